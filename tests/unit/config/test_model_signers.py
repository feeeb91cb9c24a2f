"""A model's signature and signer, as validate checks them: named together, the signature in the model store, the
signer an elliptic-curve public key or certificates on this machine (files made in the test)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sovkit.config import load_stack
from sovkit.config.signers import parse_signer, read_signer, signature_location
from sovkit.errors import StackError

STACKS = Path(__file__).parents[3] / "stacks"
MODEL = "      replicas: 2\n  sovereign-ai:tenants:"  # the end of br-ministerio-cpu's one model


def signed_stack(tmp_path: Path, signature: str | None, signer: str | None) -> Path:
    lines = "".join(f"      {key}: {value}\n" for key, value in (("signature", signature), ("signer", signer))
                    if value is not None)
    text = (STACKS / "Pulumi.br-ministerio-cpu.yaml").read_text()
    path = tmp_path / "Pulumi.br-ministerio-cpu.yaml"
    path.write_text(text.replace(MODEL, "      replicas: 2\n" + lines + "  sovereign-ai:tenants:", 1))
    return path


def pem_file(tmp_path: Path, name: str, key: object, private: bool = False) -> str:
    path = tmp_path / name
    if private:
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                                 serialization.NoEncryption())
    else:
        data = key.public_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]
                                serialization.PublicFormat.SubjectPublicKeyInfo)
    path.write_bytes(data)
    return str(path)


def refusal(path: Path) -> tuple[str, list[str]]:
    with pytest.raises(StackError) as caught:
        load_stack(path)
    return str(caught.value), [p.key_path for p in caught.value.problems]


def test_a_signed_model_validates_and_its_signature_lies_beside_the_weights(tmp_path):
    signer = pem_file(tmp_path, "team.pub", ec.generate_private_key(ec.SECP384R1()).public_key())
    site = load_stack(signed_stack(tmp_path, "model.sig", signer))
    spec = site.serving.models["qwen2-5-1-5b"]
    assert signature_location(spec) == f"{spec.source}/model.sig"


def test_a_signature_under_the_store_validates_where_one_beside_it_does_not(tmp_path):
    signer = pem_file(tmp_path, "team.pub", ec.generate_private_key(ec.SECP256R1()).public_key())
    inside = "https://modelos.ministerio.gov.example/sovkit/signatures/qwen.sig"
    assert signature_location(load_stack(signed_stack(tmp_path, inside, signer)).serving.models["qwen2-5-1-5b"]) \
        == inside
    text, keys = refusal(signed_stack(tmp_path, "https://modelos.ministerio.gov.example/outra/qwen.sig", signer))
    assert keys == ["sovereign-ai:models.qwen2-5-1-5b.signature"]
    assert "a file in the in-country model store https://modelos.ministerio.gov.example/sovkit" in text


@pytest.mark.parametrize("signature", ["../outro-modelo/model.sig", "./model.sig", "sigs//model.sig"])
def test_a_relative_signature_stays_below_the_models_folder(tmp_path, signature):
    signer = pem_file(tmp_path, "team.pub", ec.generate_private_key(ec.SECP256R1()).public_key())
    text, keys = refusal(signed_stack(tmp_path, signature, signer))
    assert keys == ["sovereign-ai:models.qwen2-5-1-5b.signature"] and "no '..', '.' or empty parts" in text


def test_a_signer_without_its_signature_is_refused(tmp_path):
    signer = pem_file(tmp_path, "team.pub", ec.generate_private_key(ec.SECP256R1()).public_key())
    text, keys = refusal(signed_stack(tmp_path, None, signer))
    assert keys == ["sovereign-ai:models.qwen2-5-1-5b.signature"] and "such as model.sig beside the weights" in text


def test_a_private_key_as_signer_is_refused_without_printing_it(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = pem_file(tmp_path, "team.pem", key, private=True)
    text, keys = refusal(signed_stack(tmp_path, "model.sig", path))
    assert keys == ["sovereign-ai:models.qwen2-5-1-5b.signer"]
    assert "a private key" in text and "openssl pkey -in KEY -pubout" in text
    body = Path(path).read_text().splitlines()[1]
    assert body not in text


@pytest.mark.parametrize(("key", "found"), [
    (rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), "an RSA-2048 public key"),
    (ec.generate_private_key(ec.SECP256K1()).public_key(), "an elliptic-curve public key on secp256k1"),
], ids=["rsa", "secp256k1"])
def test_a_key_the_offline_verifier_cannot_check_is_refused(tmp_path, key, found):
    text, keys = refusal(signed_stack(tmp_path, "model.sig", pem_file(tmp_path, "team.pub", key)))
    assert keys == ["sovereign-ai:models.qwen2-5-1-5b.signer"] and found in text and "P-256, P-384, P-521" in text


def test_a_relative_signer_path_is_read_from_the_project_folder(tmp_path):
    """A site keeps the keys it trusts beside its stack in git: `stacks/keys/...` is read in the project folder,
    and one that is not there is named."""
    text, keys = refusal(signed_stack(tmp_path, "model.sig", "stacks/keys/no-such-team.pem"))
    assert keys == ["sovereign-ai:models.qwen2-5-1-5b.signer"]
    assert "'stacks/keys/no-such-team.pem': no such file" in text
    assert read_signer("stacks/keys/sovkit-tiny-model.pem").description == "EC P-256 public key"


def test_the_fingerprint_is_the_sha256_of_the_public_key_info():
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    signer = parse_signer(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert (signer.kind, signer.fingerprint, signer.description) == (
        "public key", "sha256:" + hashlib.sha256(der).hexdigest(), "EC P-256 public key")
