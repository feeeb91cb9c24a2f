"""Serve the offline tiny model with real vLLM (the CPU build), started with exactly the arguments and
environment the renderer gives the local stack's model (the `server` fixture of conftest.py), and check what the
gateway and monitoring rely on."""

from __future__ import annotations

import json

import pytest
from vllm_helpers import SERVED, request

from sovkit.render.values import render_values
from sovkit.serving import chart

pytestmark = pytest.mark.slow


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

