"""The offline test model: deterministic, and the local stack names it by the digest it has."""

from __future__ import annotations

import hashlib
import json
import struct

from sovkit.serving import tinymodel


def test_builder_reproduces_the_local_stack_revision(stacks, tmp_path):
    revision = tinymodel.build(tmp_path / "tiny-chat")
    assert stacks["local"].serving.models["tiny-chat"].revision == revision
    assert tinymodel.build(tmp_path / "again") == revision


def test_manifest_checks_every_file(tmp_path):
    dest = tmp_path / "m"
    tinymodel.build(dest)
    lines = (dest / "SHA256SUMS").read_text().splitlines()
    names = sorted(p.name for p in dest.iterdir() if p.name not in ("SHA256SUMS", tinymodel.SIGNATURE))
    assert [line.split("  ")[1] for line in lines] == names
    for line in lines:
        digest, name = line.split("  ")
        assert hashlib.sha256((dest / name).read_bytes()).hexdigest() == digest


def test_safetensors_header_matches_the_config():
    blob = tinymodel.safetensors()
    size = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + size])
    c = tinymodel.CONFIG
    assert header["model.embed_tokens.weight"]["shape"] == [c["vocab_size"], c["hidden_size"]]
    assert header["model.layers.1.self_attn.k_proj.weight"]["shape"] == [
        c["num_key_value_heads"] * c["head_dim"], c["hidden_size"]]
    end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    assert len(blob) == 8 + size + end
    assert end == 2 * tinymodel.parameter_count()  # bfloat16


def test_tokenizer_is_byte_level_bpe_with_the_chat_tokens():
    tok = tinymodel.tokenizer_json()
    vocab = tok["model"]["vocab"]
    assert len(set(vocab.values())) == len(vocab)
    assert max(vocab.values()) < tinymodel.CONFIG["vocab_size"]
    for added in tok["added_tokens"]:
        assert vocab[added["content"]] == added["id"]
    for left, right in tok["model"]["merges"]:
        assert left in vocab and right in vocab and left + right in vocab


def test_the_published_signature_verifies_the_model_with_the_kits_key(tmp_path):
    """The tiny model is published signed (model.sig beside it, left out of SHA256SUMS); the key the local stack
    trusts verifies it, and it refuses the model once a byte changes."""
    from sovkit.models.verify_weights import verify_model
    from sovkit.stacks import project_root

    dest = tmp_path / "m"
    tinymodel.build(dest)
    signer = project_root() / "stacks" / "keys" / "sovkit-tiny-model.pem"
    assert verify_model(dest, dest / tinymodel.SIGNATURE, signer).verified
    weights = dest / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert verify_model(dest, dest / tinymodel.SIGNATURE, signer).altered == ["model.safetensors"]
