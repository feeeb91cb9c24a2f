"""Every catalogue figure the planner uses is the one in the model's published config.json: each entry is compared
with the copy kept in tests/data/model_configs/<id>.json, whose `_source` says where it was read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sovkit.config.catalogue import TINY_MODEL, catalogue

CONFIGS = Path(__file__).parents[2] / "data" / "model_configs"
COPIED = sorted(p.stem for p in CONFIGS.glob("*.json"))
# Entries that predate the copied configs: no published config.json of theirs could be read where the kit is built.
# The list may only shrink; a new entry comes with its config.
WITHOUT_A_COPY = {"qwen2.5-14b-instruct", "qwen2.5-7b-instruct", "qwen2.5-1.5b-instruct", "aya-expanse-8b",
                  "mistral-nemo-instruct-2407", "seallm-v3-7b-chat"}


def config(model_id: str) -> dict:
    return json.loads((CONFIGS / f"{model_id}.json").read_text(encoding="utf-8"))


def figures(c: dict) -> dict:
    """What the catalogue copies from a config.json (sovkit/data/catalogue.yaml says how). A key the file leaves out
    takes transformers' default: tie_word_embeddings is true unless a config says otherwise."""
    tied = c.get("tie_word_embeddings", True)
    if c["model_type"] == "whisper":  # the decoder holds the KV cache; the encoder's states are cross-attended
        heads = c["decoder_attention_heads"]
        return {"layers": c["decoder_layers"], "hidden_size": c["d_model"], "attention_heads": heads, "kv_heads": heads,
                "head_dim": c["d_model"] // heads, "vocab_size": c["vocab_size"], "tied": tied,
                "max_context": c["max_target_positions"], "attention": "encoder-decoder",
                "encoder_positions": c["max_source_positions"]}
    heads = c["num_attention_heads"]
    out = {"layers": c["num_hidden_layers"], "hidden_size": c["hidden_size"], "attention_heads": heads,
           "kv_heads": c.get("num_key_value_heads") or heads,
           "head_dim": c.get("head_dim") or c["hidden_size"] // heads,
           "vocab_size": c["vocab_size"], "tied": tied, "max_context": c["max_position_embeddings"],
           "attention": "decoder", "encoder_positions": 0}
    if c["model_type"] == "xlm-roberta":  # positions start after the padding index: two fewer tokens than rows
        out |= {"max_context": c["max_position_embeddings"] - c["pad_token_id"] - 1, "attention": "encoder"}
    return out


def parameter_count(c: dict) -> int:
    """Parameters of the weight shapes a config.json describes (norms and biases included, to within a few)."""
    if c["model_type"] == "whisper":
        d, ffn, vocab = c["d_model"], c["encoder_ffn_dim"], c["vocab_size"]
        attention, mlp = 4 * d * d + 3 * d, 2 * d * ffn + ffn + d
        encoder = (c["num_mel_bins"] * d * 3 + d + d * d * 3 + d + c["max_source_positions"] * d
                   + c["encoder_layers"] * (attention + mlp + 4 * d) + 2 * d)
        decoder = (vocab * d + c["max_target_positions"] * d + c["decoder_layers"] * (2 * attention + mlp + 6 * d)
                   + 2 * d)
        return encoder + decoder
    h, layers, inner, vocab = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["vocab_size"]
    if c["model_type"] == "xlm-roberta":
        embeddings = (vocab + c["max_position_embeddings"] + c["type_vocab_size"]) * h + 2 * h
        layer = 4 * (h * h + h) + 2 * h * inner + inner + h + 4 * h
        head = (h * h + h) + (h + 1) * len(c.get("id2label", {}))  # pooler, or a classifier's dense and output
        return embeddings + layers * layer + head
    f = figures(c)
    attention = 2 * h * f["attention_heads"] * f["head_dim"] + 2 * h * f["kv_heads"] * f["head_dim"]
    return vocab * h * (1 if f["tied"] else 2) + layers * (attention + 3 * h * inner + 2 * h) + h


def test_every_entry_has_its_config_except_the_named_older_ones():
    assert set(catalogue()) - set(COPIED) == WITHOUT_A_COPY | {TINY_MODEL}  # the tiny model: test_serving_catalogue
    assert set(COPIED) <= set(catalogue()), "a copied config of no catalogue entry"


@pytest.mark.parametrize("model_id", COPIED)
def test_figures_are_the_published_config(model_id):
    c = config(model_id)
    entry = catalogue()[model_id]
    mine = {key: getattr(entry, key) for key in figures(c)}
    assert mine == figures(c)
    # the card's parameter count (rounded there) is the weights the config's shapes describe
    assert entry.parameters == pytest.approx(parameter_count(c), rel=0.015)


@pytest.mark.parametrize("model_id", COPIED)
def test_each_copy_names_where_it_was_read(model_id):
    source = config(model_id)["_source"]
    assert re.match(r"^github\.com/[\w.-]+/[\w.-]+/blob/[0-9a-f]{40}/\S+", source), source
    assert "config.json" in source


def test_the_check_fails_on_a_wrong_figure():
    c = config("bge-m3")
    assert figures(c)["max_context"] == 8192 and figures(c)["attention"] == "encoder"
    assert figures({**c, "num_hidden_layers": 12})["layers"] != catalogue()["bge-m3"].layers
    assert parameter_count({**c, "vocab_size": 125000}) < 0.985 * catalogue()["bge-m3"].parameters
