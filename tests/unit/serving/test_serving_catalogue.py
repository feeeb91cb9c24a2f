"""The model catalogue and the stack rule that guards it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from serving_helpers import model

from sovkit.config.catalogue import catalogue, check_models, get
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
    assert variant("in-mh-pune", models={"sarvam": model("sarvam-1")}).serving.models["sarvam"].catalogue == "sarvam-1"
