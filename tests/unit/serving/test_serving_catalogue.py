"""The model catalogue and the stack rule that guards it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import TypeAdapter
from serving_helpers import model

from sovkit.config.catalogue import ATTENTION_KINDS, catalogue, check_models, get, served_task, tasks
from sovkit.config.licences import licences
from sovkit.config.types import Language
from sovkit.serving import tinymodel

SHIPPED_IDS = ["qwen2.5-14b-instruct", "llama-3.1-8b-instruct", "aya-expanse-8b", "sarvam-1", "seallm-v3-7b-chat",
               "qwen2.5-1.5b-instruct", "sovkit-tiny-llama"]
ISSUE_IDS = ["qwen2.5-7b-instruct", "gemma-2-9b-it", "mistral-7b-instruct-v0.3", "mistral-nemo-instruct-2407",
             "phi-3.5-mini-instruct"]


@pytest.mark.parametrize("model_id", SHIPPED_IDS + ISSUE_IDS)
def test_catalogue_holds(model_id):
    entry = get(model_id)
    assert entry.quantizations["none"].bytes_per_weight == 2.0
    assert entry.attention_heads % entry.kv_heads == 0, "grouped-query attention: heads are a multiple of KV heads"
    assert entry.embedding_parameters < entry.parameters


@pytest.mark.parametrize(("model_id", "quantization"), [("llama-3.1-8b-instruct", "fp8"),
                                                        ("llama-3.1-8b-instruct", "awq"),
                                                        ("qwen2.5-1.5b-instruct", "awq")])
def test_quantizations_the_stacks_use_are_offered(model_id, quantization):
    assert quantization in get(model_id).quantizations


def test_quantized_checkpoints_weigh_less():
    for entry in catalogue().values():
        for quant in entry.quantizations.values():
            assert 0.5 <= quant.bytes_per_weight <= 2.0
            assert entry.weight_bytes(quant.name) <= entry.weight_bytes("none")


def test_figures_published_in_config_json():
    # Spot checks against the published config.json files.
    llama = get("llama-3.1-8b-instruct")
    assert (llama.layers, llama.kv_heads, llama.head_dim, llama.vocab_size, llama.max_context) == (
        32, 8, 128, 128256, 131072)
    sarvam = get("sarvam-1")
    assert (sarvam.layers, sarvam.hidden_size, sarvam.kv_heads, sarvam.vocab_size, sarvam.max_context) == (
        28, 2048, 8, 68096, 8192)
    aya = get("aya-expanse-8b")
    assert (aya.layers, aya.kv_heads, aya.vocab_size, aya.tied) == (32, 8, 256000, True)
    assert get("gemma-2-9b-it").head_dim == 256


def test_tiny_model_entry_is_the_built_model():
    entry, config = get("sovkit-tiny-llama"), tinymodel.CONFIG
    assert entry.layers == config["num_hidden_layers"]
    assert entry.hidden_size == config["hidden_size"]
    assert entry.attention_heads == config["num_attention_heads"]
    assert entry.kv_heads == config["num_key_value_heads"]
    assert entry.head_dim == config["head_dim"]
    assert entry.vocab_size == config["vocab_size"]
    assert entry.max_context == config["max_position_embeddings"]
    assert entry.tied == config["tie_word_embeddings"]
    assert entry.parameters == tinymodel.parameter_count()


def test_languages_by_primary_subtag():
    assert get("qwen2.5-1.5b-instruct").covers(["pt-BR", "en"])
    assert not get("sarvam-1").covers(["sw"])


def test_unknown_ids_raise_with_the_catalogue():
    with pytest.raises(KeyError, match=r"qwen2\.5-14b-instruct"):
        get("gpt-5")


def test_check_models_accepts_the_shipped_stacks(stacks):
    for site in stacks.values():
        assert list(check_models(site, frozenset())) == []


def test_check_models_refuses_unknown_quantization_and_context(stacks):
    site = stacks["in-mh-pune"]
    bad = site.serving.models | {
        "sarvam-1": site.serving.models["sarvam-1"].model_copy(update={"catalogue": "gpt-5"}),
        "llama-3-1-8b": site.serving.models["llama-3-1-8b"].model_copy(update={"quantization": "w8a8",
                                                                               "max_context": 262144}),
    }
    wrong = replace(site, serving=site.serving.model_copy(update={"models": bad}))
    problems = {p.key_path: p for p in check_models(wrong, frozenset())}
    assert set(problems) == {"sovereign-ai:models.sarvam-1.catalogue", "sovereign-ai:models.llama-3-1-8b.maxContext"}
    assert "qwen2.5-14b-instruct" in problems["sovereign-ai:models.sarvam-1.catalogue"].allowed
    assert problems["sovereign-ai:models.llama-3-1-8b.maxContext"].allowed.startswith("at most 131072")
    bad["sarvam-1"] = site.serving.models["sarvam-1"].model_copy(update={"quantization": "awq"})
    wrong = replace(site, serving=site.serving.model_copy(update={"models": bad}))
    problems = {p.key_path: p for p in check_models(wrong, frozenset())}
    assert problems["sovereign-ai:models.sarvam-1.quantization"].found == "'awq'"
    assert problems["sovereign-ai:models.sarvam-1.quantization"].allowed.endswith("published in: none")


def test_model_helper_is_valid(variant):
    site = variant("in-mh-pune", servedUses=["research"], models={"sarvam": model("sarvam-1")})
    assert site.serving.models["sarvam"].catalogue == "sarvam-1"


def test_every_entry_names_known_tasks_licence_and_attention():
    known_tasks, known_licences, language_tag = set(tasks()), set(licences()), TypeAdapter(Language)
    for entry in catalogue().values():
        assert entry.tasks and set(entry.tasks) <= known_tasks, entry.id
        assert entry.licence in known_licences, entry.id
        assert entry.attention in ATTENTION_KINDS, entry.id
        assert (entry.encoder_positions > 0) == (entry.attention == "encoder-decoder"), entry.id
        for language in entry.languages:  # a stack may promise any of them, so each passes the stack's own check
            assert language_tag.validate_python(language) == language


def test_each_task_maps_onto_vllms_runners():
    assert {t.name: t.runner for t in tasks().values()} == {
        "generate": "generate", "embed": "pooling", "rerank": "pooling", "transcribe": "generate"}
    assert tasks()["transcribe"].routes == ("/v1/audio/transcriptions", "/v1/audio/translations")
    assert "/v1/embeddings" in tasks()["embed"].routes and "/v1/rerank" in tasks()["rerank"].routes


def test_encoders_keep_no_kv_cache_and_speech_models_cache_the_encoder():
    assert get("bge-m3").kv_bytes_per_token == 0
    whisper = get("whisper-large-v3-turbo")
    assert whisper.kv_bytes_per_token == 2 * 4 * 20 * 64 * 2  # the decoder's 4 layers
    assert whisper.cached_positions(448) == 448 + 1500


def test_quantizations_name_the_accelerators_vllm_serves_them_on():
    support = get("llama-3.2-3b-instruct").quantization_support()
    assert set(support) == {"none", "fp8", "w8a8"}
    assert support["fp8"] == {"amd": ("cdna3",), "nvidia": ("ampere", "ada", "hopper", "blackwell")}
    assert set(support["w8a8"]) == {"cpu", "nvidia"}  # no INT8 W8A8 kernel for AMD GPUs
    assert set(support["none"]) == {"amd", "cpu", "nvidia"}


def test_a_task_the_entry_lacks_is_refused(stacks):
    site = stacks["za-national-dc"]
    wrong = site.serving.models | {"bge-m3": site.serving.models["bge-m3"].model_copy(update={"task": "generate"})}
    site = replace(site, serving=site.serving.model_copy(update={"models": wrong}))
    [problem] = check_models(site, frozenset())
    assert (problem.key_path, problem.found, problem.allowed) == (
        "sovereign-ai:models.bge-m3.task", "'generate'", "a task bge-m3 serves: embed")
    assert served_task("bge-m3", None) == "embed" and served_task("qwen3-8b", None) == "generate"
