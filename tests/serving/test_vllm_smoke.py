"""Serve the offline tiny model with real vLLM (the CPU build), started with exactly the arguments and
environment the renderer gives the local stack's model, and check what the gateway and monitoring rely on.

Binds only 127.0.0.1 on a free port; the server is stopped (its whole process group) when the test ends.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from vllm_helpers import vllm_env

from sovkit.config import load_stack
from sovkit.render.values import render_values
from sovkit.render.vllm_args import render_vllm
from sovkit.serving import chart, tinymodel
from sovkit.stacks import project_root

pytestmark = pytest.mark.slow
STARTUP_TIMEOUT_S = 420
SERVED = "tiny-chat"


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


@pytest.fixture(scope="module")
def server(vllm_python, tmp_path_factory):
    site = load_stack(project_root() / "stacks" / "Pulumi.local.yaml")
    model_dir = tmp_path_factory.mktemp("models") / SERVED
    revision = tinymodel.build(model_dir)
    assert revision == site.serving.models[SERVED].revision, "the local stack must name the model it serves"
    port = free_port()
    launch = render_vllm(site, SERVED, model_path=str(model_dir), port=port)
    assert launch.args[launch.args.index("--host") + 1] == "127.0.0.1"
    key = secrets.token_urlsafe(24)
    log_path = Path(tmp_path_factory.mktemp("logs")) / "vllm.log"
    env = vllm_env(**launch.env, **{launch.api_key_env: key}, OMP_NUM_THREADS=str(os.cpu_count() or 1))
    with log_path.open("w") as log:
        proc = subprocess.Popen([vllm_python, "-m", "vllm.entrypoints.openai.api_server", *launch.args], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=model_dir.parent)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if request(f"{base}/health", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM not healthy after {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(2)
        yield {"base": base, "key": key, "site": site, "log": log_path}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def test_health(server):
    assert request(f"{server['base']}/health")[0] == 200


def test_models_need_the_key_and_list_the_served_name(server):
    assert request(f"{server['base']}/v1/models")[0] == 401
    status, body = request(f"{server['base']}/v1/models", server["key"])
    assert status == 200
    assert [m["id"] for m in json.loads(body)["data"]] == [SERVED]


def test_chat_completion_shape(server):
    status, body = request(f"{server['base']}/v1/chat/completions", server["key"], {
        "model": SERVED, "messages": [{"role": "user", "content": "Habari? Which form renews a permit?"}],
        "max_tokens": 8, "temperature": 0})
    assert status == 200, body
    reply = json.loads(body)
    assert reply["object"] == "chat.completion" and reply["model"] == SERVED
    [choice] = reply["choices"]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in {"length", "stop"}
    assert reply["usage"]["completion_tokens"] <= 8 and reply["usage"]["prompt_tokens"] > 0


def test_chat_completion_streams(server):
    status, body = request(f"{server['base']}/v1/chat/completions", server["key"], {
        "model": SERVED, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 6, "stream": True})
    assert status == 200
    events = [line.removeprefix("data: ") for line in body.decode().splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) >= 2
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"


def test_every_series_the_alerts_and_dashboard_read_is_exported(server):
    # after the completions above, so the request histograms and counters have series
    try:
        objects = chart.template(render_values(server["site"]))
    except chart.HelmError as err:
        pytest.skip(f"the pinned helm could not render the chart: {err}")
    used = chart.metric_names(objects)
    assert len(used) >= 8
    status, body = request(f"{server['base']}/metrics")
    assert status == 200
    exported = {line.split("{")[0].split(" ")[0] for line in body.decode().splitlines() if line and line[0] != "#"}
    missing = used - exported
    assert not missing, f"alerts/panels read series vLLM does not export: {sorted(missing)}"

