"""Running vLLM's own parser from a serving venv (imported by name: test folders are not packages)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from sovkit.config import PROJECT, SiteConfig, load_stack
from sovkit.config.catalogue import get
from sovkit.config.loader import build_site
from sovkit.render.vllm_args import render_vllm
from sovkit.serving.scenarios import SCENARIOS, scenario_site
from sovkit.stacks import project_root, stack_files, stack_path

HERE = Path(__file__).parent
SERVED = "tiny-chat"  # the local stack's model the `server` fixture serves
CONFIGS = HERE.parent / "data" / "model_configs"  # the config.json of catalogue entries (tests/unit/config)
TELEMETRY_OFF = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def vllm_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "VLLM_TARGET_DEVICE": "cpu", **TELEMETRY_OFF, **extra}


def copied_config(catalogue_id: str) -> dict | None:
    """The published config.json of a catalogue entry, as the tests keep it (None for an entry without one)."""
    path = CONFIGS / f"{catalogue_id}.json"
    if not path.exists():
        return None
    return {key: value for key, value in json.loads(path.read_text(encoding="utf-8")).items() if key != "_source"}


def catalogue_site() -> SiteConfig:
    """br-ministerio-cpu (two CPU nodes, hosts mode) serving every catalogue model whose config.json the tests keep,
    each at its longest context, as a research site (so every licence allows it)."""
    config = yaml.safe_load(stack_path("br-ministerio-cpu", project_root()).read_text(encoding="utf-8"))["config"]
    store = config[f"{PROJECT}:modelStore"].rstrip("/")
    models = {entry.replace(".", "-"): {
        "catalogue": entry, "source": f"{store}/{entry}", "revision": "sha256:" + "0e9e39f2" * 8,
        "quantization": "none", "maxContext": get(entry).max_context, "languages": ["en"], "replicas": 2}
        for entry in sorted(p.stem for p in CONFIGS.glob("*.json"))}
    config |= {f"{PROJECT}:models": models, f"{PROJECT}:servedUses": ["research"],
               f"{PROJECT}:tenants": {"research": {"models": list(models), "rateLimit": {"requestsPerMinute": 60},
                                                   "apiKey": {"file": "/etc/sovkit/keys/research.key"}}}}
    return build_site(config, "every copied catalogue model on br-ministerio-cpu", None)


def launches(accelerator: str | None = None) -> list[tuple[str, object]]:
    """(label, launch) of every model of every shipped stack, ci/ scenario and the catalogue site, or of those on
    `accelerator`."""
    sites = [(f"stack {p.name}", load_stack(p)) for p in stack_files(project_root())]
    sites += [(f"scenario {name}", scenario_site(name)) for name in SCENARIOS]
    sites += [("catalogue on cpu", catalogue_site())]
    return [(f"{label}: {served}", render_vllm(site, served)) for label, site in sites
            if accelerator in (None, site.accelerator.accelerator) for served in site.serving.models]


def parse(python: str, arg_lists: list) -> dict:
    """vLLM's serve parser (vllm_parse.py, run by `python`) on each argument list, or on each {"args", "config"}: then
    vLLM also builds its model configuration from them."""
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
