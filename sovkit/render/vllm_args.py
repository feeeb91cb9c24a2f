"""The one renderer of vLLM's serve arguments and environment: the chart values and the hosts mode's
systemd units both call `render_vllm`, so the two modes can never disagree about how a model is served."""

from __future__ import annotations

from dataclasses import dataclass, field

from sovkit.config.catalogue import served_task, tasks
from sovkit.config.planner import ModelPlan, plan_model
from sovkit.config.site import SiteConfig
from sovkit.config.vendors import vendor as vendor_data
from sovkit.render import gateway

MODEL_ROOT = "/models"  # where a model's weights are mounted (kubernetes) or unpacked (hosts): MODEL_ROOT/<served name>
PORT = 8000  # kubernetes: every pod's port; hosts: the first model's, the next one +1, ...
API_KEY_ENV = "VLLM_API_KEY"  # vLLM reads its API key from this variable; it is never an argument
GENERATE = "generate"  # the task vLLM's default runner serves: its arguments are what every chat model always had

# Telemetry off and the hub unreachable by configuration, on every accelerator (DESIGN.md: residency).
TELEMETRY_ENV = {
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
# Hosts mode: a model server's workers talk to each other on loopback. Left alone, gloo (and NCCL's bootstrap)
# bind to the address the host name resolves to, and a CPU server's workers opened some 26 ports there.
LOOPBACK_ENV = {
    "VLLM_HOST_IP": "127.0.0.1",
    "GLOO_SOCKET_IFNAME": "lo",
    "NCCL_SOCKET_IFNAME": "lo",
    # idle connections from the gateway closed after this (the gateway closes its own a second sooner)
    "VLLM_HTTP_TIMEOUT_KEEP_ALIVE": str(gateway.MODEL_SERVER_KEEP_ALIVE_S),
}

class PlanError(ValueError):
    """A model that cannot be served as the stack says; the message names what would fit."""


@dataclass(frozen=True)
class VllmLaunch:
    served_name: str
    args: list[str]  # after `vllm serve` / `python -m vllm.entrypoints.openai.api_server`
    env: dict[str, str]  # plain settings; the API key comes separately, from a secret, as API_KEY_ENV
    port: int
    model_path: str
    plan: ModelPlan
    api_key_env: str = API_KEY_ENV
    labels: dict[str, str] = field(default_factory=dict)


def default_port(site: SiteConfig, served_name: str) -> int:
    if site.platform.mode == "kubernetes":
        return PORT
    return PORT + list(site.serving.models).index(served_name)


def render_vllm(site: SiteConfig, served_name: str, *, model_path: str | None = None, host: str | None = None,
                port: int | None = None) -> VllmLaunch:
    """Arguments and environment that serve one model of the site. Raises PlanError when it does not fit."""
    spec = site.serving.models[served_name]
    plan = plan_model(site, served_name)
    if not plan.fits:
        raise PlanError(f"{served_name}: {plan.problem}")
    vendor = site.accelerator.accelerator
    model_path = model_path or f"{MODEL_ROOT}/{served_name}"
    port = port or default_port(site, served_name)
    # Kubernetes pods listen on their pod address (NetworkPolicy fences them); hosts-mode servers on loopback
    # only, behind the TLS gateway.
    host = host or ("0.0.0.0" if site.platform.mode == "kubernetes" else "127.0.0.1")
    task = tasks()[served_task(spec.catalogue, spec.task)]
    args = [
        "--model", model_path,
        "--served-model-name", served_name,
        "--host", host,
        "--port", str(port),
        "--max-model-len", str(spec.max_context),
        "--max-num-seqs", str(plan.max_num_seqs),
    ]
    if task.name == GENERATE:
        args.append("--enable-prefix-caching")
    else:
        # The task's runner, not vLLM's guess from the architecture. Prefix caching is left to vLLM: it has none for
        # an encoder's bidirectional attention or an encoder-decoder, and warns that forcing it may crash.
        args += ["--runner", task.runner]
    args += [
        "--dtype", "bfloat16" if vendor == "cpu" else "auto",
        "--generation-config", "vllm",  # never look for a generation config anywhere but vLLM's defaults
    ]
    method = vendor_data(vendor).quantization_methods.get(spec.quantization)
    if method:
        args += ["--quantization", method]
    env = dict(TELEMETRY_ENV) if site.platform.mode == "kubernetes" else {**TELEMETRY_ENV, **LOOPBACK_ENV}
    if vendor == "cpu":
        env["VLLM_CPU_KVCACHE_SPACE"] = str(int(plan.kv_cache_gib))
        # No torch.compile on CPU: its inductor backend needs a C++ compiler, which a hardened server does not
        # carry, and it would add minutes to every start.
        args.append("--enforce-eager")
    else:
        args += [
            "--tensor-parallel-size", str(plan.tensor_parallel),
            "--gpu-memory-utilization", f"{plan.gpu_memory_utilization:.2f}",
        ]
        if plan.pipeline_parallel > 1:
            args += ["--pipeline-parallel-size", str(plan.pipeline_parallel), "--distributed-executor-backend", "ray"]
    return VllmLaunch(served_name, args, env, port, model_path, plan)
