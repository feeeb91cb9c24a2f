"""The model catalogue (package data `catalogue.yaml`), the tasks its models serve (`tasks.yaml`), and the stack rule
that refuses models it does not hold; and what the accelerator catalogue (`accelerators.yaml`) says of the board a
host's GPUs sit on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from sovkit.config.schema import PROJECT
from sovkit.config.site import SiteConfig, accelerator_catalogue
from sovkit.config.vendors import vendor, vendor_names
from sovkit.data import load_yaml
from sovkit.errors import Problem, short

TINY_MODEL = "sovkit-tiny-llama"  # the catalogue entry sovkit makes offline (sovkit/serving/tinymodel.py)
EMBEDDING_BYTES = 2.0  # embeddings and the output head stay 16-bit in every published quantized checkpoint
KV_CACHE_BYTES = 2  # vLLM's default kv-cache dtype (auto) is the model's 16-bit dtype


ATTENTION_KINDS = ("decoder", "encoder", "encoder-decoder")


@dataclass(frozen=True)
class Task:
    """What a model serves, and how vLLM serves it (sovkit/data/tasks.yaml)."""

    name: str
    title: str
    runner: str  # vLLM's --runner
    vllm: str  # what vLLM's model registry reports for a model of this task
    routes: tuple[str, ...]  # the OpenAI-compatible routes vLLM answers it on
    body: str = "json"  # what a request's body is on those routes: JSON, or a multipart form (an upload)


@cache
def tasks() -> dict[str, Task]:
    raw: dict[str, dict] = load_yaml("tasks.yaml")  # type: ignore[assignment]
    return {name: Task(name, t["title"], t["runner"], t["vllm"], tuple(t["routes"]), t.get("body", "json"))
            for name, t in raw.items()}


@dataclass(frozen=True)
class Quantization:
    name: str
    bytes_per_weight: float
    checkpoint: str


@dataclass(frozen=True)
class CatalogueModel:
    """One catalogue entry: architecture figures from config.json, the rest from the model card."""

    id: str
    name: str
    family: str
    parameters: int
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    tied: bool
    max_context: int
    licence: str  # an id of sovkit/data/licences.yaml
    languages: tuple[str, ...]
    quantizations: dict[str, Quantization]
    tasks: tuple[str, ...]  # the first is the one a stack gets when it names none
    attention: str = "decoder"  # one of ATTENTION_KINDS
    encoder_positions: int = 0  # encoder-decoder: encoder states cross-attention caches per sequence

    @property
    def embedding_parameters(self) -> int:
        """Input embedding plus output head (one matrix when they are tied)."""
        return self.vocab_size * self.hidden_size * (1 if self.tied else 2)

    def weight_bytes(self, quantization: str) -> float:
        """Bytes of the weights in one quantization: the body at its bytes per weight, embeddings at 16 bits."""
        body = self.parameters - self.embedding_parameters
        return body * self.quantizations[quantization].bytes_per_weight + self.embedding_parameters * EMBEDDING_BYTES

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V, for every layer and KV head: 2 x layers x kv_heads x head_dim x bytes. An encoder's bidirectional
        attention keeps no KV cache (vLLM allocates none for it)."""
        if self.attention == "encoder":
            return 0
        return 2 * self.layers * self.kv_heads * self.head_dim * KV_CACHE_BYTES

    def cached_positions(self, context: int) -> int:
        """KV cache positions one sequence of `context` tokens holds: its own tokens, and for an encoder-decoder the
        encoder states its cross-attention caches (the same heads and layers, so the same bytes per position)."""
        return context + self.encoder_positions

    def quantization_support(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """For each quantization the model is published in: vendor -> the generations vLLM has kernels for it on
        (the vendor registry's table)."""
        return {q: {name: vendor(name).quantizations[q] for name in vendor_names() if vendor(name).quantizations.get(q)}
                for q in self.quantizations}

    def covers(self, languages: Iterable[str]) -> bool:
        """Whether the card lists every language (by its primary subtag: pt-BR is covered by pt)."""
        mine = {lang.split("-")[0] for lang in self.languages}
        return all(lang.split("-")[0] in mine for lang in languages)


@cache
def catalogue() -> dict[str, CatalogueModel]:
    raw: dict[str, dict] = load_yaml("catalogue.yaml")  # type: ignore[assignment]
    models = {}
    for model_id, e in raw.items():
        quants = {q: Quantization(q, float(v["bytes_per_weight"]), v["checkpoint"])
                  for q, v in e["quantizations"].items()}
        models[model_id] = CatalogueModel(
            id=model_id, name=e["name"], family=e["family"], parameters=int(float(e["parameters"])),
            layers=e["layers"], hidden_size=e["hidden_size"], attention_heads=e["attention_heads"],
            kv_heads=e["kv_heads"], head_dim=e["head_dim"], vocab_size=e["vocab_size"], tied=bool(e["tied"]),
            max_context=e["max_context"], licence=e["licence"], languages=tuple(e["languages"]), quantizations=quants,
            tasks=tuple(e["tasks"]), attention=e.get("attention", "decoder"),
            encoder_positions=int(e.get("encoder_positions", 0)),
        )
    return models


def get(model_id: str) -> CatalogueModel:
    try:
        return catalogue()[model_id]
    except KeyError:
        raise KeyError(f"{model_id!r} is not in sovkit's model catalogue ({', '.join(catalogue())})") from None


def on_nvswitch_board(accelerator_model: str | None, count: int) -> bool:
    """Whether a host counting `count` GPUs of `accelerator_model` (sovkit/data/accelerators.yaml) sits on an HGX
    board that joins them through NVSwitch, which needs NVIDIA Fabric Manager before CUDA sees the GPUs."""
    entry = accelerator_catalogue().get(accelerator_model or "") or {}
    return bool(count) and entry.get("nvswitch_board_gpus") == count


def served_task(catalogue_id: str, task: str | None) -> str:
    """The task a stack's model serves: the one it names, else its catalogue entry's first."""
    return task or get(catalogue_id).tasks[0]


def _generations(site: SiteConfig, role: str) -> dict[str, str]:
    """generation -> what has it, for the accelerators of the site's `role` nodes (a CPU site: its one generation)."""
    name = site.accelerator.accelerator
    if name == "cpu":
        return dict.fromkeys(vendor("cpu").generations, "the CPU backend")
    known = accelerator_catalogue()
    return {known[n.accelerator_model]["generation"]: n.accelerator_model for n in site.nodes_with_role(role)
            if n.accelerator_model in known and known[n.accelerator_model]["vendor"] == name}


def check_models(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Stack rule: every model names a catalogue entry, a task and a quantization that entry offers, a quantization
    vLLM has kernels for on the accelerators it runs on (the vendor registry), a context it has, and only languages
    its card lists."""
    entries = catalogue()
    for served, spec in site.serving.models.items():
        base = f"{PROJECT}:models.{served}"
        entry = entries.get(spec.catalogue)
        if entry is None:
            yield Problem(f"{base}.catalogue", short(spec.catalogue),
                          "a model of sovkit's catalogue: " + ", ".join(entries),
                          fix="pick a catalogue id (sovkit/data/catalogue.yaml), or add the model to the catalogue")
            continue
        if spec.task is not None and spec.task not in entry.tasks:
            yield Problem(f"{base}.task", short(spec.task),
                          f"a task {spec.catalogue} serves: " + ", ".join(entry.tasks),
                          fix="name the task the model serves, or a catalogue model serving the task you need")
        if spec.quantization not in entry.quantizations:
            yield Problem(f"{base}.quantization", short(spec.quantization),
                          f"a quantization {spec.catalogue} is published in: " + ", ".join(entry.quantizations),
                          fix="use one of those, or a catalogue model published in the quantization you need")
        else:
            known = vendor(site.accelerator.accelerator)
            for generation, where in _generations(site, site.model_role(spec)).items():
                if not known.serves(spec.quantization, generation):
                    usable = [q for q in entry.quantizations if known.serves(q, generation)]
                    yield Problem(f"{base}.quantization", short(spec.quantization),
                                  f"a quantization of {spec.catalogue} vLLM has kernels for on {where} ({generation}): "
                                  + (", ".join(usable) or "none"),
                                  fix=f"the vendor registry (sovkit/data/vendors/{known.name}.yaml) says which "
                                      "quantizations vLLM serves on each generation")
        if spec.max_context > entry.max_context:
            yield Problem(f"{base}.maxContext", str(spec.max_context),
                          f"at most {entry.max_context}, the longest context {spec.catalogue} was trained for")
        for i, language in enumerate(spec.languages):
            if not entry.covers([language]):
                yield Problem(f"{base}.languages[{i}]", short(language),
                              f"a language {spec.catalogue}'s card lists: " + ", ".join(entry.languages),
                              fix="promise users only what the model serves, or pick a model covering it")
