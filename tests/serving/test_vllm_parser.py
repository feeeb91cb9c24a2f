"""Every argument list the renderer gives (ci/ scenarios and shipped stacks) parsed and validated by vLLM's
own serve parser, from the vLLM CPU venv, with the values it parsed checked against what was meant."""

from __future__ import annotations

import pytest
from vllm_helpers import launches, parse


@pytest.fixture(scope="module")
def parsed(vllm_python) -> tuple[list, dict]:
    cases = launches()
    return cases, parse(vllm_python, [launch.args for _, launch in cases])


def test_vllm_accepts_every_rendered_argument_list(parsed):
    cases, out = parsed
    assert len(out["results"]) == len(cases) >= 15
    for (label, launch), result in zip(cases, out["results"], strict=True):
        assert result["ok"], f"{label}: vLLM refused {launch.args}: {result.get('error')}"
        p = result["parsed"]
        plan = launch.plan
        assert p["served_model_name"] in ([launch.served_name], launch.served_name), label
        assert p["max_model_len"] == plan.max_context
        assert p["max_num_seqs"] == plan.max_num_seqs
        assert p["enable_prefix_caching"] is True
        assert p["api_key"] is None, "the key comes from VLLM_API_KEY, never an argument"
        assert p["port"] == launch.port
        if plan.accelerator != "cpu":
            assert p["tensor_parallel_size"] == plan.tensor_parallel
            assert p["pipeline_parallel_size"] == plan.pipeline_parallel
            assert p["gpu_memory_utilization"] == pytest.approx(0.90)
        if p["quantization"] is not None:
            assert p["quantization"] in out["methods"], f"{label}: {p['quantization']} is not a vLLM method"


def test_vllm_refuses_a_broken_argument_list(vllm_python):
    """The check can fail: an argument vLLM does not know, and a malformed number, are refused."""
    out = parse(vllm_python, [["--model", "/m", "--tensor-parallel-sise", "2"], ["--model", "/m", "--port", "x"]])
    assert [r["ok"] for r in out["results"]] == [False, False]
