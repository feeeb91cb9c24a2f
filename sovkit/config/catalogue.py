"""The model catalogue (package data `catalogue.yaml`) and the stack rule that refuses models it does not hold; and
what the accelerator catalogue (`accelerators.yaml`) says of the board a host's GPUs sit on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from sovkit.config.schema import PROJECT
from sovkit.config.site import SiteConfig, accelerator_catalogue
from sovkit.data import load_yaml
from sovkit.errors import Problem, short

TINY_MODEL = "sovkit-tiny-llama"  # the catalogue entry sovkit makes offline (sovkit/serving/tinymodel.py)
EMBEDDING_BYTES = 2.0  # embeddings and the output head stay 16-bit in every published quantized checkpoint
KV_CACHE_BYTES = 2  # vLLM's default kv-cache dtype (auto) is the model's 16-bit dtype


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
    licence: str
    languages: tuple[str, ...]
    quantizations: dict[str, Quantization]

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
        """K and V, for every layer and KV head: 2 x layers x kv_heads x head_dim x bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * KV_CACHE_BYTES

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


def check_models(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Stack rule: every model names a catalogue entry, a quantization that entry offers, a context it has,
    and only languages its card lists."""
    entries = catalogue()
    for served, spec in site.serving.models.items():
        base = f"{PROJECT}:models.{served}"
        entry = entries.get(spec.catalogue)
        if entry is None:
            yield Problem(f"{base}.catalogue", short(spec.catalogue),
                          "a model of sovkit's catalogue: " + ", ".join(entries),
                          fix="pick a catalogue id (sovkit/data/catalogue.yaml), or add the model to the catalogue")
            continue
        if spec.quantization not in entry.quantizations:
            yield Problem(f"{base}.quantization", short(spec.quantization),
                          f"a quantization {spec.catalogue} is published in: " + ", ".join(entry.quantizations),
                          fix="use one of those, or a catalogue model published in the quantization you need")
        if spec.max_context > entry.max_context:
            yield Problem(f"{base}.maxContext", str(spec.max_context),
                          f"at most {entry.max_context}, the longest context {spec.catalogue} was trained for")
        for i, language in enumerate(spec.languages):
            if not entry.covers([language]):
                yield Problem(f"{base}.languages[{i}]", short(language),
                              f"a language {spec.catalogue}'s card lists: " + ", ".join(entry.languages),
                              fix="promise users only what the model serves, or pick a model covering it")
