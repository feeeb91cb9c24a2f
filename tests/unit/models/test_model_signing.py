"""`sovkit model sign` and the verifier hosts run before a model server starts, on the real tiny model: signed
weights verify; a changed byte, an added file, a removed file and a foreign key are each refused, naming the file."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from signing_helpers import write_certificate, write_key

from sovkit.cli import run
from sovkit.config.signers import parse_signer
from sovkit.models import verify_weights
from sovkit.models.signing import SigningError, sign_model
from sovkit.models.verify_weights import verify_model


@pytest.fixture
def team_key(tmp_path: Path) -> tuple[Path, Path]:
    return write_key(tmp_path, "model-team")


@pytest.fixture
def signed(tiny_model, team_key) -> Path:
    model = tiny_model()
    sign_model(model, team_key[0])
    return model


def test_sign_command_signs_what_the_hosts_place_and_says_what_the_stack_names(tiny_model, team_key, tmp_path,
                                                                                capsys):
    model, public = tiny_model(), tmp_path / "signer.pub"
    assert run(["model", "sign", str(model), "--key", str(team_key[0]), "--public-key", str(public)]) == 0
    out = capsys.readouterr().out
    revision = "sha256:" + hashlib.sha256((model / "SHA256SUMS").read_bytes()).hexdigest()
    assert f"signed {model}: 7 files" in out and f"revision: {revision}" in out
    assert "signature: model.sig" in out and str(public) in out
    assert public.read_bytes() == team_key[1].read_bytes()
    assert parse_signer(public.read_bytes()).fingerprint in out
    assert run(["model", "verify", str(model), "--signer", str(public)]) == 0


def test_signed_tiny_model_verifies_with_the_signers_public_key(signed, team_key):
    result = verify_model(signed, signed / "model.sig", team_key[1])
    assert result.verified, result.report()
    assert "verified against" in result.report()


def test_one_changed_byte_is_refused_naming_the_file(signed, team_key):
    weights = signed / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    result = verify_model(signed, signed / "model.sig", team_key[1])
    assert not result.verified
    assert (result.altered, result.added, result.missing) == (["model.safetensors"], [], [])
    assert "altered (its bytes differ from the signed ones): model.safetensors" in result.report()


def test_an_added_file_is_refused_naming_it(signed, team_key):
    (signed / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    result = verify_model(signed, signed / "model.sig", team_key[1])
    assert (result.verified, result.added, result.altered, result.missing) == (
        False, ["adapter_model.safetensors"], [], [])


def test_a_removed_file_is_refused_naming_it(signed, team_key):
    (signed / "tokenizer.json").unlink()
    result = verify_model(signed, signed / "model.sig", team_key[1])
    assert (result.verified, result.missing, result.altered, result.added) == (False, ["tokenizer.json"], [], [])


def test_a_signature_by_another_key_is_refused(signed, tmp_path):
    _, stranger = write_key(tmp_path, "stranger")
    result = verify_model(signed, signed / "model.sig", stranger)
    assert not result.verified and not (result.altered or result.added or result.missing)
    assert "does not verify with this signer" in result.problem


def test_a_tampered_model_is_refused_while_its_neighbour_verifies(tiny_model, team_key, capsys):
    """What a host runs before each model server starts: one verdict per model, so one bad model stops alone."""
    good, bad = tiny_model("tiny-chat"), tiny_model("tiny-chat-2")
    for model in (good, bad):
        sign_model(model, team_key[0])
    (bad / "config.json").write_text("{}\n")
    codes = {model.name: verify_weights.main([str(model), "--signature", str(model / "model.sig"),
                                              "--signer", str(team_key[1])]) for model in (good, bad)}
    assert codes == {"tiny-chat": 0, "tiny-chat-2": 1}
    out, err = capsys.readouterr()
    assert f"{good}: verified" in out and f"{bad}: REFUSED" in err and "config.json" in err


def test_entry_point_prints_a_json_verdict_and_exits_2_on_an_unreadable_signature(signed, team_key, capsys):
    assert verify_weights.main([str(signed), "--signature", str(signed / "model.sig"), "--signer", str(team_key[1]),
                                "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["verified"] is True and verdict["altered"] == verdict["added"] == verdict["missing"] == []
    assert verify_weights.main([str(signed), "--signature", str(signed / "absent.sig"),
                                "--signer", str(team_key[1])]) == 2
    assert "cannot verify" in capsys.readouterr().err


def test_a_signature_kept_outside_the_folder_verifies_the_same(tiny_model, team_key, tmp_path):
    model, signature = tiny_model(), tmp_path / "signatures" / "tiny-chat.sig"
    signature.parent.mkdir()
    sign_model(model, team_key[0], signature)
    assert verify_model(model, signature, team_key[1]).verified
    shutil.copy(signature, model / "model.sig")  # a stray copy in the folder is a file that was not signed
    assert verify_model(model, signature, team_key[1]).added == ["model.sig"]


def test_certificate_signing_verifies_against_the_root_the_site_trusts(tiny_model, tmp_path):
    root_key, _ = write_key(tmp_path, "national-root")
    root = write_certificate(tmp_path, "National model review CA", root_key)
    team_key, _ = write_key(tmp_path, "team")
    team = write_certificate(tmp_path, "Model team", team_key, root_key, root)
    model = tiny_model()
    sign_model(model, team_key, certificate=team, chain=[root])
    assert verify_model(model, model / "model.sig", root).verified
    assert parse_signer(root.read_bytes()).description == "CN=National model review CA"
    other_key, _ = write_key(tmp_path, "other-root")
    other = write_certificate(tmp_path, "Another CA", other_key)
    refused = verify_model(model, model / "model.sig", other)
    assert not refused.verified and "does not verify with this signer" in refused.problem


def test_sign_refuses_a_folder_holding_files_its_sums_do_not_list(tiny_model, team_key):
    model = tiny_model()
    (model / "README.md").write_text("review notes\n")
    (model / "tokenizer.json").unlink()
    with pytest.raises(SigningError) as caught:
        sign_model(model, team_key[0])
    assert "not listed: README.md" in str(caught.value) and "listed, not here: tokenizer.json" in str(caught.value)
    assert not (model / "model.sig").exists()


def test_sign_refuses_a_key_the_offline_verifier_cannot_check(tiny_model, tmp_path, capsys):
    key, _ = write_key(tmp_path, "k1", ec.SECP256K1())
    model = tiny_model()
    assert run(["model", "sign", str(model), "--key", str(key)]) == 1
    assert "elliptic-curve keys on P-256, P-384, P-521" in capsys.readouterr().err


def test_the_host_verifier_imports_nothing_of_sovkit():
    """A host runs the file alone, with the model-signing library from the bundle's wheels."""
    tree = ast.parse(Path(verify_weights.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {name for name in imported if name and name.split(".")[0] == "sovkit"}
