"""The gateway's log program, run by mtail itself over lines in the gateway's own log format: every response counts
once, by tenant and status, which the host alert rules' 5xx and 429 rates read; the tokens the model servers
counted add up by tenant, model and kind."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "roles" / "gateway" / "files" / "etc" / "mtail" / "sovkit-gateway.mtail"
NGINX_CONF = ROOT / "roles" / "gateway" / "templates" / "etc" / "nginx" / "conf.d" / "sovkit-gateway.conf.j2"

pytestmark = pytest.mark.skipif(shutil.which("mtail") is None, reason="mtail is not installed (Debian package mtail)")


def log_line(tenant: str, status: int, model: str = "tiny-chat", tokens: tuple[int, int] | None = None) -> str:
    """One line as nginx writes it with the role's log_format: its fields in the template's order (tokens null
    where the model server gave no usage)."""
    template = NGINX_CONF.read_text()
    fields = re.findall(r'"(\w+)":', template.split("log_format sovkit_json", 1)[1].split(";", 1)[0])
    values = {"tenant": tenant, "status": status, "model": model, "path": "/v1/chat/completions",
              "latency_s": 0.01, "bytes_out": 12, "prompt_tokens": tokens[0] if tokens else None,
              "completion_tokens": tokens[1] if tokens else None}
    return json.dumps({name: values.get(name, "x") for name in fields}, separators=(",", ":"))


def mtail_metrics(tmp_path: Path, lines: list[str]) -> str:
    progs = tmp_path / "progs"
    progs.mkdir()
    shutil.copy(PROGRAM, progs)
    log = tmp_path / "access.json"
    log.write_text("".join(line + "\n" for line in lines))
    result = subprocess.run(["mtail", "--progs", str(progs), "--logs", str(log), "--one_shot",
                             "--one_shot_format=prometheus", "--address", "127.0.0.1", "--port", "0"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def counts(tmp_path: Path, lines: list[str]) -> dict[tuple[str, str], float]:
    found = {}
    for match in re.finditer(r'^sovkit_gateway_responses_total\{([^}]*)\} (\S+)$', mtail_metrics(tmp_path, lines),
                             re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        found[(labels["tenant"], labels["status"])] = float(match.group(2))
    return found


def test_each_response_counts_once_by_tenant_and_status(tmp_path: Path):
    lines = [log_line("health", 200)] * 3 + [log_line("health", 429), log_line("registry", 502),
                                              log_line("", 401)]
    assert counts(tmp_path, lines) == {("health", "200"): 3, ("health", "429"): 1, ("registry", "502"): 1,
                                       ("", "401"): 1}


def test_a_line_of_another_format_counts_nothing(tmp_path: Path):
    assert counts(tmp_path, ['198.51.100.9 - - [02/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 12']) == {}


def test_tokens_add_up_by_tenant_model_and_kind_and_unknown_usage_adds_nothing(tmp_path: Path):
    lines = [log_line("health", 200, "tiny-chat", (11, 5)), log_line("health", 200, "tiny-chat", (7, 64)),
             log_line("health", 200, "other-chat", (3, 2)), log_line("registry", 200, "tiny-chat", (1, 1)),
             log_line("health", 502, "tiny-chat"), log_line("", 401, "")]
    found = {}
    for match in re.finditer(r'^sovkit_gateway_tokens_total\{([^}]*)\} (\S+)$', mtail_metrics(tmp_path, lines), re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        found[(labels["tenant"], labels["model"], labels["kind"])] = float(match.group(2))
    assert found == {("health", "tiny-chat", "prompt"): 18, ("health", "tiny-chat", "completion"): 69,
                     ("health", "other-chat", "prompt"): 3, ("health", "other-chat", "completion"): 2,
                     ("registry", "tiny-chat", "prompt"): 1, ("registry", "tiny-chat", "completion"): 1}
