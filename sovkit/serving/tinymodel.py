"""The offline test model `sovkit-tiny-llama`: a two-layer Llama with random weights and a byte-level BPE
tokenizer with a chat template, written with the standard library only, byte for byte the same on every
machine. Its revision is the sha256 of its SHA256SUMS manifest, the same check the chart's model fetcher
makes, so the local stack can name it by digest.

    python -m sovkit.serving.tinymodel DEST      # writes DEST/ and prints sha256:<digest>

Text it generates is nonsense (random weights): it exists to prove serving, never content.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import sys
from importlib import resources
from pathlib import Path

SEED = 20240611
SIGNATURE = "model.sig"  # beside the weights, left out of SHA256SUMS and of what it signs
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,  # the smallest head size vLLM's CPU attention kernels take
    "vocab_size": 512,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": True,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "initializer_range": 0.02,
    "bos_token_id": 256,
    "eos_token_id": 257,
    "pad_token_id": 257,
    "torch_dtype": "bfloat16",
    "use_cache": True,
}
SPECIAL_TOKENS = ["<|begin_of_text|>", "<|im_end|>", "<|im_start|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# A few merges "trained" on public-service sentences, so the tokenizer is a real BPE and not bytes only.
MERGES = [("Ġ", "t"), ("h", "e"), ("i", "n"), ("a", "n"), ("e", "r"), ("o", "n"), ("Ġt", "he"), ("a", "t")]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map, the alphabet of byte-level BPE."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def tokenizer_json() -> dict:
    alphabet = _bytes_to_unicode()
    vocab = {alphabet[b]: b for b in range(256)} | {tok: 256 + i for i, tok in enumerate(SPECIAL_TOKENS)}
    for left, right in MERGES:
        vocab.setdefault(left + right, len(vocab))
    added = [{"id": 256 + i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, tok in enumerate(SPECIAL_TOKENS)]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": byte_level, "post_processor": byte_level, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for a, b in MERGES]},
    }


def _tensors() -> dict[str, tuple[list[int], list[float]]]:
    c = CONFIG
    h, hd, inter = c["hidden_size"], c["head_dim"], c["intermediate_size"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    shapes: dict[str, list[int]] = {"model.embed_tokens.weight": [c["vocab_size"], h], "model.norm.weight": [h]}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes |= {
            p + "input_layernorm.weight": [h], p + "post_attention_layernorm.weight": [h],
            p + "self_attn.q_proj.weight": [q, h], p + "self_attn.k_proj.weight": [kv, h],
            p + "self_attn.v_proj.weight": [kv, h], p + "self_attn.o_proj.weight": [h, q],
            p + "mlp.gate_proj.weight": [inter, h], p + "mlp.up_proj.weight": [inter, h],
            p + "mlp.down_proj.weight": [h, inter],
        }
    rng = random.Random(SEED)
    out = {}
    for name in sorted(shapes):
        shape = shapes[name]
        count = 1
        for d in shape:
            count *= d
        values = [1.0] * count if name.endswith("norm.weight") else [
            rng.gauss(0.0, c["initializer_range"]) for _ in range(count)]
        out[name] = (shape, values)
    return out


def parameter_count() -> int:
    return sum(len(values) for _, values in _tensors().values())


def _bf16(values: list[float]) -> bytes:
    """float -> bfloat16 by round-to-nearest-even of the float32 bits."""
    out = bytearray()
    for v in values:
        bits = struct.unpack("<I", struct.pack("<f", v))[0]
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        out += struct.pack("<H", bits & 0xFFFF)
    return bytes(out)


def safetensors() -> bytes:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, (shape, values) in _tensors().items():
        blob = _bf16(values)
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)


def _json(obj: object) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def files() -> dict[str, bytes]:
    bos, eos = SPECIAL_TOKENS[0], SPECIAL_TOKENS[1]
    return {
        "config.json": _json(CONFIG),
        "generation_config.json": _json({"bos_token_id": CONFIG["bos_token_id"], "eos_token_id": CONFIG["eos_token_id"],
                                         "do_sample": True, "temperature": 0.7}),
        "model.safetensors": safetensors(),
        "tokenizer.json": _json(tokenizer_json()),
        "tokenizer_config.json": _json({
            "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos, "pad_token": eos,
            "model_max_length": CONFIG["max_position_embeddings"], "add_bos_token": False,
            "chat_template": CHAT_TEMPLATE, "clean_up_tokenization_spaces": False,
        }),
        "special_tokens_map.json": _json({"bos_token": bos, "eos_token": eos, "pad_token": eos}),
    }


def manifest(contents: dict[str, bytes]) -> bytes:
    """SHA256SUMS in `sha256sum` format, sorted by name: what `sha256sum -c` checks after a download."""
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(contents.items())).encode()


def revision(sums: bytes) -> str:
    return "sha256:" + hashlib.sha256(sums).hexdigest()


def build(dest: Path) -> str:
    """Write the model to dest (created; files rewritten), with its publisher's signature beside it as model.sig,
    and return its revision."""
    dest.mkdir(parents=True, exist_ok=True)
    contents = files()
    sums = manifest(contents)
    for name, data in [*contents.items(), ("SHA256SUMS", sums), (SIGNATURE, published_signature())]:
        (dest / name).write_bytes(data)
    return revision(sums)


def published_signature() -> bytes:
    """The OpenSSF model signature the kit published the model with (made once, with a key that was then
    destroyed; its public half is stacks/keys/sovkit-tiny-model.pem). The model is the same bytes on every machine,
    so the one signature verifies it everywhere."""
    return resources.files("sovkit.data").joinpath("tinymodel", SIGNATURE).read_bytes()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sovkit.serving.tinymodel DEST", file=sys.stderr)
        return 2
    print(build(Path(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
