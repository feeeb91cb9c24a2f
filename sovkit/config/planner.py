"""Sizing planner: for each model of a site, the memory its weights and KV cache take, the tensor-parallel
size and GPUs it needs, and how many sequences of the target context it serves at once.

The arithmetic (all sizes in GiB = 2**30 bytes), per GPU of one replica spanning `tp` GPUs in each of
`pp` nodes (pipeline stages):

    budget      = device memory x gpu_memory_utilization
    weights     = (parameters - embedding parameters) x bytes per weight + embedding parameters x 2
    free for KV = budget - weights / (tp x pp) - RUNTIME_RESERVE_GIB
    KV / token  = 2 (K and V) x layers / pp x max(1, kv_heads / tp) x head_dim x 2 bytes   (on one GPU)
    KV tokens   = free for KV / KV per token
    sequences   = KV tokens // (max_context + encoder positions)   (sequences that can all reach the full context
                                                                     at once)

A speech model (encoder-decoder) also caches, per sequence, its cross-attention's K and V over the encoder's states
(Whisper: 1500 for a 30-second window), as vLLM does. An encoder model (embeddings, reranking) keeps no KV cache: vLLM
allocates none for bidirectional attention, so it fits when its weights and the runtime reserve do, and vLLM's batch
ceiling bounds its sequences.

vLLM's own profiling at start-up gives the exact figure; this plan is what decides the arguments before
any hardware exists, and refuses a model that cannot fit so nobody learns it from a crash loop.
On CPU sites the KV cache is a fixed amount of RAM (VLLM_CPU_KVCACHE_SPACE) sized for CPU_SEQUENCES.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from sovkit.config.catalogue import TINY_MODEL, CatalogueModel, catalogue, get, served_task
from sovkit.config.licences import licences
from sovkit.config.schema import ModelSpec
from sovkit.config.site import SiteConfig, accelerator_catalogue
from sovkit.config.vendors import vendor

GIB = 1024**3
GPU_MEMORY_UTILIZATION = 0.90  # vLLM's default share of device memory it may take
RUNTIME_RESERVE_GIB = 1.5  # per GPU: activations at the batch-token limit, CUDA/HIP graphs, NCCL/RCCL buffers
MIN_AUTO_SEQUENCES = 4  # tensorParallel auto: the smallest size serving at least this many full-context sequences
MAX_NUM_SEQS = 256  # vLLM's default ceiling on sequences in one batch
TP_SIZES = (1, 2, 4, 8, 16)
CPU_SEQUENCES = 4  # CPU sites: KV cache sized for this many full-context sequences
CPU_RUNTIME_GIB = 2.0  # CPU sites: Python, torch and the server besides weights and KV cache


@dataclass(frozen=True)
class ModelPlan:
    served_name: str
    catalogue_id: str
    quantization: str
    accelerator: str  # nvidia | amd | cpu
    max_context: int
    replicas: int
    node_role: str
    weights_gib: float
    kv_bytes_per_token: int  # the whole model, all layers and KV heads
    accelerator_model: str | None = None
    device_memory_gib: float = 0.0  # one GPU
    tensor_parallel: int = 1  # GPUs per node of one replica
    pipeline_parallel: int = 1  # nodes one replica spans
    gpu_memory_utilization: float | None = None
    kv_cache_gib: float = 0.0  # one replica, all its GPUs (CPU: VLLM_CPU_KVCACHE_SPACE)
    kv_tokens: int = 0
    concurrent_sequences: int = 0  # at max_context
    max_num_seqs: int = 1
    memory_gib: float = 0.0  # CPU sites: RAM one replica needs
    problem: str | None = None
    suggestions: tuple[str, ...] = field(default=())
    # Where each replica runs: per replica, (node, the indices of its GPUs there) for each node it spans.
    placement: tuple[tuple[tuple[str, tuple[int, ...]], ...], ...] = field(default=())

    @property
    def fits(self) -> bool:
        return self.problem is None

    @property
    def gpus_per_replica(self) -> int:
        return 0 if self.accelerator == "cpu" else self.tensor_parallel * self.pipeline_parallel

    @property
    def kv_kib_per_token(self) -> float:
        return self.kv_bytes_per_token / 1024


def _supports(vendor_name: str, accelerator_model: str | None, quantization: str) -> bool:
    """vLLM has kernels for the quantization on this accelerator (the vendor's data: vLLM's support table)."""
    known = vendor(vendor_name)
    # a CPU site: the CPU backend's one generation (sovkit/data/vendors/cpu.yaml)
    generation = accelerator_catalogue()[accelerator_model]["generation"] if accelerator_model else \
        next(iter(known.generations))
    return known.serves(quantization, generation)


def _tp_valid(entry: CatalogueModel, tp: int) -> bool:
    """vLLM shards attention heads evenly; KV heads are split, or replicated when fewer than tp."""
    return entry.attention_heads % tp == 0 and (entry.kv_heads % tp == 0 or tp % entry.kv_heads == 0)


def gpu_figures(entry: CatalogueModel, quantization: str, memory_gib: float, max_context: int, tp: int, pp: int = 1,
                utilization: float = GPU_MEMORY_UTILIZATION) -> tuple[float, int, int]:
    """(KV cache GiB of the replica, KV tokens, full-context sequences) for tp GPUs in each of pp nodes."""
    gpus = tp * pp
    free = memory_gib * utilization - entry.weight_bytes(quantization) / GIB / gpus - RUNTIME_RESERVE_GIB
    if free <= 0:
        return 0.0, 0, 0
    if not entry.kv_bytes_per_token:  # an encoder: no KV cache, the batch ceiling bounds its sequences
        return 0.0, 0, MAX_NUM_SEQS
    per_gpu_token = 2 * math.ceil(entry.layers / pp) * max(1, entry.kv_heads // tp) * entry.head_dim * 2
    tokens = int(free * GIB // per_gpu_token)
    return free * gpus, tokens, tokens // entry.cached_positions(max_context)


def _gpu_nodes(site: SiteConfig, role: str) -> list[tuple[str, str | None, int]]:
    return [(n.name, n.accelerator_model, n.accelerator_count) for n in site.nodes_with_role(role)
            if n.accelerator_count > 0]


def plan_model(site: SiteConfig, served: str, spec: ModelSpec | None = None) -> ModelPlan:
    """The plan of one model (spec overrides the stack's, for what-if suggestions)."""
    spec = spec or site.serving.models[served]
    entry = get(spec.catalogue)
    vendor_name = site.accelerator.accelerator
    role = site.model_role(spec)
    base = ModelPlan(served, entry.id, spec.quantization, vendor_name, spec.max_context, spec.replicas, role,
                     entry.weight_bytes(spec.quantization) / GIB if spec.quantization in entry.quantizations else 0.0,
                     entry.kv_bytes_per_token)
    if spec.quantization not in entry.quantizations:
        return replace(base, problem=f"{entry.id} is not published in {spec.quantization} "
                                     f"(offered: {', '.join(entry.quantizations)})")
    if vendor_name == "cpu":
        return _plan_cpu(base, entry, spec)
    nodes = _gpu_nodes(site, role)
    if not nodes:
        return replace(base, problem=f"no {role} node of this site has an accelerator")
    model = nodes[0][1]
    per_node = min(count for _, _, count in nodes)
    memory_gib = site.accelerator_memory_mib(model) / 1024 if model else 0.0
    base = replace(base, accelerator_model=model, device_memory_gib=memory_gib,
                   gpu_memory_utilization=GPU_MEMORY_UTILIZATION)
    if not _supports(vendor_name, model, spec.quantization):
        return replace(base, problem=f"vLLM does not serve {spec.quantization} on {model}")
    multi_node = site.platform.mode == "kubernetes" and len(nodes) > 1
    if spec.tensor_parallel == "auto":
        candidates = [(tp, 1) for tp in TP_SIZES if tp <= per_node and _tp_valid(entry, tp)]
        if multi_node:
            candidates += [(per_node, pp) for pp in range(2, len(nodes) + 1) if _tp_valid(entry, per_node)]
        best = None
        for tp, pp in candidates:
            figures = gpu_figures(entry, spec.quantization, memory_gib, spec.max_context, tp, pp)
            if figures[2] >= MIN_AUTO_SEQUENCES:
                best = (tp, pp, figures)
                break
            if figures[2] >= 1 and best is None:
                best = (tp, pp, figures)
        if best is None:
            tp, pp = candidates[-1] if candidates else (1, 1)
            best = (tp, pp, gpu_figures(entry, spec.quantization, memory_gib, spec.max_context, tp, pp))
        tp, pp, figures = best
    else:
        tp, pp = spec.tensor_parallel, 1
        if tp > per_node:
            if not multi_node or tp % per_node:
                return replace(base, tensor_parallel=tp, problem=(
                    f"tensorParallel {tp} is more than the {per_node} GPUs of one {role} node"
                    + ("" if multi_node else "; spanning nodes needs kubernetes mode and more than one node")))
            tp, pp = per_node, spec.tensor_parallel // per_node
        if not _tp_valid(entry, tp):
            return replace(base, tensor_parallel=tp, problem=(
                f"tensorParallel {tp} does not divide the {entry.attention_heads} attention heads and "
                f"{entry.kv_heads} KV heads of {entry.id}"))
        figures = gpu_figures(entry, spec.quantization, memory_gib, spec.max_context, tp, pp)
    kv_gib, tokens, seqs = figures
    plan = replace(base, tensor_parallel=tp, pipeline_parallel=pp, kv_cache_gib=kv_gib, kv_tokens=tokens,
                   concurrent_sequences=seqs, max_num_seqs=max(1, min(MAX_NUM_SEQS, seqs)))
    if seqs < 1:
        gpus = tp * pp
        need = entry.weight_bytes(spec.quantization) / GIB / gpus + RUNTIME_RESERVE_GIB
        have = memory_gib * GPU_MEMORY_UTILIZATION
        kv = entry.kv_bytes_per_token * entry.cached_positions(spec.max_context) / GIB
        plan = replace(plan, problem=(
            f"does not fit: on {gpus} x {model} ({have:.1f} GiB usable each) the weights and runtime take "
            f"{need:.1f} GiB per GPU, leaving no room for one {spec.max_context}-token sequence "
            f"({kv:.2f} GiB of KV cache)"))
    return plan


def _plan_cpu(base: ModelPlan, entry: CatalogueModel, spec: ModelSpec) -> ModelPlan:
    if not _supports("cpu", None, spec.quantization):
        return replace(base, problem=f"vLLM's CPU backend does not serve {spec.quantization}")
    positions = entry.cached_positions(spec.max_context)
    # VLLM_CPU_KVCACHE_SPACE takes whole GiB, at least 1 (an encoder, which caches nothing, gets the minimum)
    kv_gib = max(1, math.ceil(entry.kv_bytes_per_token * positions * CPU_SEQUENCES / GIB))
    tokens = kv_gib * GIB // entry.kv_bytes_per_token if entry.kv_bytes_per_token else 0
    seqs = tokens // positions if entry.kv_bytes_per_token else CPU_SEQUENCES
    return replace(base, kv_cache_gib=float(kv_gib), kv_tokens=tokens, concurrent_sequences=seqs,
                   max_num_seqs=max(1, min(MAX_NUM_SEQS, seqs)),
                   memory_gib=base.weights_gib + kv_gib + CPU_RUNTIME_GIB)


def _suggest(site: SiteConfig, served: str) -> tuple[str, ...]:
    """A quantization of the same model, else the largest smaller catalogue model serving the same task under a
    licence that allows the site's uses, that would fit."""
    spec = site.serving.models[served]
    entry = get(spec.catalogue)
    found = []
    current = entry.quantizations[spec.quantization].bytes_per_weight if spec.quantization in entry.quantizations \
        else float("inf")
    lighter = [q for q in entry.quantizations.values() if q.bytes_per_weight < current]
    for quant in sorted(lighter, key=lambda q: -q.bytes_per_weight):  # the least lossy that fits first
        trial = plan_model(site, served, spec.model_copy(update={"quantization": quant.name}))
        if trial.fits:
            found.append(f"quantization: {quant.name} ({trial.weights_gib:.1f} GiB of weights, "
                         f"{trial.concurrent_sequences} sequences of {spec.max_context} tokens)")
            break
    task = served_task(entry.id, spec.task)
    uses = set(site.serving.served_uses)
    others = sorted((m for m in catalogue().values() if m.id not in (entry.id, TINY_MODEL) and task in m.tasks
                     and uses <= set(licences()[m.licence].uses)
                     and m.max_context >= spec.max_context and m.parameters < entry.parameters),
                    key=lambda m: (not m.covers(spec.languages), -m.parameters))
    for other in others:
        for quant in sorted(other.quantizations, key=lambda q: -other.quantizations[q].bytes_per_weight):
            trial = plan_model(site, served, spec.model_copy(update={"catalogue": other.id, "quantization": quant}))
            if trial.fits:
                covered = "" if other.covers(spec.languages) else " (check it covers your languages)"
                found.append(f"catalogue: {other.id} with quantization: {quant} ({trial.weights_gib:.1f} GiB of "
                             f"weights, {trial.concurrent_sequences} sequences){covered}")
                return tuple(found)
    return tuple(found)


def _place(site: SiteConfig, plans: list[ModelPlan]) -> list[ModelPlan]:
    """Place every replica on the GPU nodes, each on GPUs no other model uses: first fit in kubernetes mode (each
    replica's GPUs within its nodes); in hosts mode every node of the model's role runs one replica (the roles run
    every model on every serving node). A model whose replicas do not all find GPUs gets a problem naming how many
    the site has."""
    free: dict[str, dict[str, list[int]]] = {}  # role -> node -> free GPU indices
    out = []
    for plan in plans:
        if not plan.fits or plan.accelerator == "cpu":
            out.append(plan)
            continue
        nodes = free.setdefault(plan.node_role, {name: list(range(count))
                                                 for name, _, count in _gpu_nodes(site, plan.node_role)})
        wanted = plan.replicas if site.platform.mode == "kubernetes" else len(nodes)
        placement = []
        for replica in range(wanted):
            candidates = list(nodes) if site.platform.mode == "kubernetes" else list(nodes)[replica:replica + 1]
            chosen = [n for n in candidates if len(nodes[n]) >= plan.tensor_parallel][: plan.pipeline_parallel]
            if len(chosen) < plan.pipeline_parallel:
                break
            placement.append(tuple((n, tuple(nodes[n][: plan.tensor_parallel])) for n in chosen))
            for n in chosen:
                del nodes[n][: plan.tensor_parallel]
        plan = replace(plan, placement=tuple(placement))
        if len(placement) < wanted:
            total = sum(c for _, _, c in _gpu_nodes(site, plan.node_role))
            plan = replace(plan, problem=(
                f"only {len(placement)} of {wanted} replicas ({plan.gpus_per_replica} GPUs each) find free GPUs: "
                f"the {plan.node_role} nodes have {total} GPUs and the models before it take the rest"))
        out.append(plan)
    return out


def devices_on(site: SiteConfig, node: str) -> dict[str, tuple[int, ...]]:
    """Hosts mode: the GPUs each model uses on `node` (indices, disjoint across models), from the placement."""
    out: dict[str, tuple[int, ...]] = {}
    for plan in plan_site(site):
        for replica in plan.placement:
            for name, indices in replica:
                if name == node:
                    out[plan.served_name] = indices
    return out


def plan_site(site: SiteConfig) -> list[ModelPlan]:
    """Plans of every model of the site, in stack order, with suggestions on those that do not fit."""
    plans = _place(site, [plan_model(site, served) for served in site.serving.models])
    return [p if p.fits else replace(p, suggestions=_suggest(site, p.served_name)) for p in plans]
