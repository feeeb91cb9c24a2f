"""The one vLLM-arguments renderer, per accelerator."""

from __future__ import annotations

import pytest
from serving_helpers import gpu_host, model

from sovkit.errors import StackError
from sovkit.render.vllm_args import PlanError, render_vllm


def _opts(args: list[str]) -> dict[str, str | None]:
    """--flag value pairs (flags without a value map to None)."""
    out: dict[str, str | None] = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            nxt = args[i + 1] if i + 1 < len(args) else None
            out[arg] = None if nxt is None or nxt.startswith("--") else nxt
    return out


def test_nvidia_awq_tensor_parallel(stacks):
    launch = render_vllm(stacks["in-mh-pune"], "llama-3-1-8b")
    opts = _opts(launch.args)
    assert opts["--served-model-name"] == "llama-3-1-8b"
    assert opts["--model"] == "/models/llama-3-1-8b"
    assert opts["--quantization"] == "awq_marlin"
    assert opts["--tensor-parallel-size"] == "2"
    assert opts["--gpu-memory-utilization"] == "0.90"
    assert opts["--max-model-len"] == "16384"
    assert opts["--max-num-seqs"] == str(launch.plan.max_num_seqs) == "36"
    assert "--enable-prefix-caching" in opts
    # hosts mode: loopback only (the gateway fronts it), one port per model in stack order
    assert (opts["--host"], opts["--port"], launch.port) == ("127.0.0.1", "8001", 8001)


def test_kubernetes_pods_listen_on_their_address(stacks):
    opts = _opts(render_vllm(stacks["za-national-dc"], "qwen2-5-14b").args)
    assert (opts["--host"], opts["--port"]) == ("0.0.0.0", "8000")
    assert "--quantization" not in opts
    assert _opts(render_vllm(stacks["za-national-dc"], "llama-3-1-8b").args)["--quantization"] == "fp8"


def test_amd_serves_only_what_vllms_support_table_lists(variant):
    """vLLM's supported-hardware table has no AWQ, GPTQ or INT8 W8A8 kernel for AMD GPUs, and FP8 only on the
    MI300 series (sovkit/data/vendors/amd.yaml): validate refuses AWQ and FP8 on an MI210 site, and the renderer
    serves FP8 on MI300X."""
    for quantization in ("awq", "fp8"):
        with pytest.raises(StackError, match=rf"models\.llama\.quantization\n  found:   '{quantization}'\n  allowed: "
                                             r"a quantization of llama-3\.1-8b-instruct vLLM has kernels for on "
                                             r"MI210-64GB \(cdna2\): none"):
            variant("id-sulsel-cloud", models={"llama": model("llama-3.1-8b-instruct", quantization, tensorParallel=1)})
    groups = {"control_plane": {"flavor": "c4.large", "image": "debian-12-genericcloud", "count": 1},
              "gpu_worker": {"flavor": "g.mi300x", "image": "debian-12-genericcloud", "count": 1,
                             "accelerator": {"model": "MI300X-192GB", "count": 8}}}
    site = variant("id-sulsel-cloud", openstackNodeGroups=groups, mode="kubernetes",
                   models={"llama": model("llama-3.1-8b-instruct", "fp8", tensorParallel=1)})
    assert _opts(render_vllm(site, "llama").args)["--quantization"] == "fp8"


def test_cpu_sizes_the_kv_cache_in_the_environment(stacks):
    launch = render_vllm(stacks["br-ministerio-cpu"], "qwen2-5-1-5b")
    opts = _opts(launch.args)
    assert launch.env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert opts["--dtype"] == "bfloat16"
    assert "--enforce-eager" in launch.args  # inductor would need a compiler on the server
    assert "--tensor-parallel-size" not in opts and "--gpu-memory-utilization" not in opts
    assert opts["--quantization"] == "awq"


def test_telemetry_off_and_no_secret_in_arguments(stacks):
    """Every shipped site (read from stacks/, so a fork's new site is held to it too)."""
    for site in stacks.values():
        for served in site.serving.models:
            launch = render_vllm(site, served)
            off = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
            assert off.items() <= launch.env.items()
            assert "--api-key" not in launch.args and "VLLM_API_KEY" not in launch.env
            assert launch.api_key_env == "VLLM_API_KEY"


def test_hosts_mode_workers_talk_on_loopback_and_pods_on_their_network(stacks):
    """In hosts mode a model server's workers bind to loopback (vLLM's, gloo's and NCCL's bootstrap addresses);
    a pod's workers keep the pod's own address, which its NetworkPolicy fences."""
    loopback = {"VLLM_HOST_IP": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo", "NCCL_SOCKET_IFNAME": "lo"}
    for site in stacks.values():
        for served in site.serving.models:
            env = render_vllm(site, served).env
            if site.platform.mode == "hosts":
                assert loopback.items() <= env.items(), (site.name, served)
            else:
                assert not set(loopback) & set(env), (site.name, served)


def test_a_model_that_does_not_fit_raises_with_the_way_out(variant):
    site = variant("in-mh-pune", hosts=gpu_host("L4-24GB", 1),
                   models={"big": model("qwen2.5-14b-instruct", context=32768, tensorParallel=1)})
    with pytest.raises(PlanError, match="does not fit"):
        render_vllm(site, "big")


def test_task_models_run_their_runner_and_leave_prefix_caching_to_vllm(stacks):
    """za-national-dc's embedder runs on vLLM's pooling runner and its speech model on the generate runner, with the
    decoder's 448 tokens as its length; neither forces prefix caching, which vLLM has not for an encoder's
    bidirectional attention nor for an encoder-decoder. A chat model's arguments stay as they were."""
    za = stacks["za-national-dc"]
    embed, speech = (_opts(render_vllm(za, served).args) for served in ("bge-m3", "whisper-turbo"))
    assert (embed["--runner"], embed["--max-model-len"], embed["--max-num-seqs"]) == ("pooling", "8192", "256")
    assert (speech["--runner"], speech["--max-model-len"]) == ("generate", "448")
    assert "--enable-prefix-caching" not in embed and "--enable-prefix-caching" not in speech
    chat = _opts(render_vllm(za, "qwen2-5-14b").args)
    assert "--runner" not in chat and "--enable-prefix-caching" in chat


def test_a_reranker_on_cpu(variant):
    site = variant("br-ministerio-cpu", models={"rerank": model("bge-reranker-v2-m3", replicas=2)})
    launch = render_vllm(site, "rerank")
    opts = _opts(launch.args)
    assert (opts["--runner"], opts["--max-num-seqs"], launch.env["VLLM_CPU_KVCACHE_SPACE"]) == ("pooling", "4", "1")
    assert "--enforce-eager" in launch.args and "--quantization" not in opts
