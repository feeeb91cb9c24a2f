"""Every argument list the renderer gives (ci/ scenarios, shipped stacks, and every catalogue model with its
config.json) parsed and validated by vLLM's own serve parser, from the vLLM CPU venv, with the values it parsed
checked against what was meant; and vLLM's own model configuration built from those arguments and each published
config.json, checked against the catalogue's task and context."""

from __future__ import annotations

import pytest
from vllm_helpers import CONFIGS, copied_config, launches, parse

from sovkit.config.catalogue import get, served_task, tasks


@pytest.fixture(scope="module")
def parsed(vllm_python) -> tuple[list, dict]:
    """Every launch parsed in one run of vLLM; with its config.json where the tests keep the model's."""
    cases = launches()
    items = [{"args": launch.args, "config": copied_config(launch.plan.catalogue_id)}
             if copied_config(launch.plan.catalogue_id) else launch.args for _, launch in cases]
    return cases, parse(vllm_python, items)


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
        task = tasks()[served_task(plan.catalogue_id, None)]
        if task.name == "generate":  # vLLM's default runner, and prefix caching as every chat model had it
            assert (p["runner"], p["enable_prefix_caching"]) == ("auto", True), label
        else:  # the task's runner; prefix caching left to vLLM, which has none for encoders or encoder-decoders
            assert (p["runner"], p["enable_prefix_caching"]) == (task.runner, None), label
        assert p["api_key"] is None, "the key comes from VLLM_API_KEY, never an argument"
        assert p["port"] == launch.port
        if plan.accelerator != "cpu":
            assert p["tensor_parallel_size"] == plan.tensor_parallel
            assert p["pipeline_parallel_size"] == plan.pipeline_parallel
            assert p["gpu_memory_utilization"] == pytest.approx(0.90)
        if p["quantization"] is not None:
            assert p["quantization"] in out["methods"], f"{label}: {p['quantization']} is not a vLLM method"


def test_vllm_builds_each_model_as_the_catalogue_says(parsed):
    """For every launch of a catalogue model whose config.json the tests keep: vLLM builds its model configuration
    from the rendered arguments and that config.json, with the task's runner, the served context as its length, and
    the task the catalogue names (generation, transcription, or an embedding or a cross-encoder pooler)."""
    cases, out = parsed
    built = [(label, launch, result) for (label, launch), result in zip(cases, out["results"], strict=True)
             if copied_config(launch.plan.catalogue_id)]
    assert {launch.plan.catalogue_id for _, launch, _ in built} == {p.stem for p in CONFIGS.glob("*.json")}
    attention = {"decoder": "decoder", "encoder": "encoder_only", "encoder-decoder": "encoder_decoder"}
    for label, launch, result in built:
        assert "model" in result, f"{label}: {result.get('model_error')}"
        entry, facts = get(launch.plan.catalogue_id), result["model"]
        task = tasks()[entry.tasks[0]]
        assert (facts["runner"], facts["serves"]) == (task.runner, task.vllm), label
        assert facts["max_model_len"] == launch.plan.max_context, label
        assert facts["attention"] == attention[entry.attention], label


def test_vllm_refuses_a_broken_argument_list(vllm_python):
    """The check can fail: an argument vLLM does not know, and a malformed number, are refused."""
    out = parse(vllm_python, [["--model", "/m", "--tensor-parallel-sise", "2"], ["--model", "/m", "--port", "x"]])
    assert [r["ok"] for r in out["results"]] == [False, False]
