"""Running vLLM's own parser from a serving venv (imported by name: test folders are not packages)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from sovkit.config import load_stack
from sovkit.render.vllm_args import render_vllm
from sovkit.serving.scenarios import SCENARIOS, scenario_site
from sovkit.stacks import project_root, stack_files

HERE = Path(__file__).parent
SERVED = "tiny-chat"  # the local stack's model the `server` fixture serves
TELEMETRY_OFF = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def vllm_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "VLLM_TARGET_DEVICE": "cpu", **TELEMETRY_OFF, **extra}


def launches(accelerator: str | None = None) -> list[tuple[str, object]]:
    """(label, launch) of every model of every shipped stack and ci/ scenario, or of those on `accelerator`."""
    sites = [(f"stack {p.name}", load_stack(p)) for p in stack_files(project_root())]
    sites += [(f"scenario {name}", scenario_site(name)) for name in SCENARIOS]
    return [(f"{label}: {served}", render_vllm(site, served)) for label, site in sites
            if accelerator in (None, site.accelerator.accelerator) for served in site.serving.models]


def parse(python: str, arg_lists: list[list[str]]) -> dict:
    """vLLM's serve parser (vllm_parse.py, run by `python`) on each argument list."""
    result = subprocess.run([python, str(HERE / "vllm_parse.py")], input=json.dumps(arg_lists), text=True,
                            capture_output=True, env=vllm_env(), timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, key: str | None = None, body: dict | None = None, timeout: float = 60) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
