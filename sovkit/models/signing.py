"""`sovkit model sign`: a site's model team signs a reviewed model folder with OpenSSF model signing, offline
(an elliptic-curve private key, optionally with its signing certificate; no Sigstore, no network).

What is signed is exactly what the hosts place: the files the folder's SHA256SUMS lists, and SHA256SUMS itself (the
model store role and the chart's fetcher place nothing else, so a folder holding other files is refused before
anything is signed). The signature is written beside the weights unless told otherwise, and is left out of what it
signs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import hashing, signing

from sovkit.config.signers import CURVES, DEFAULT_SIGNATURE, Signer, parse_signer

SUMS = "SHA256SUMS"
# The paths model-signing leaves out of every signature by default (a model folder cloned with git).
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
_SUMS_LINE = re.compile(r"^([0-9a-f]{64})  \*?(.+)$")  # sha256sum's format, as the model store role reads it


class SigningError(ValueError):
    """A folder or key that cannot be signed with; the message says what and how to fix it."""


@dataclass(frozen=True)
class SignedModel:
    signature: Path
    files: int  # files signed, SHA256SUMS included
    signer: Signer  # the key, or the signing certificate, the signature carries
    revision: str  # sha256:<digest of SHA256SUMS>, the revision the stack names
    public_pem: bytes  # the key's public half: the signer a stack names when it verifies by key


def listed_files(sums: bytes, where: Path) -> list[str]:
    """The file names a SHA256SUMS lists; raises SigningError on a line that is not sha256sum's."""
    names = []
    for number, line in enumerate(sums.decode("utf-8", errors="replace").splitlines(), start=1):
        match = _SUMS_LINE.match(line)
        if not match:
            raise SigningError(f"{where}:{number}: not a line of sha256sum (64 hex digits, two spaces, a file name)")
        names.append(match.group(2))
    return names


def _present(model: Path, signature: Path) -> set[str]:
    """Every file under the folder (relative names) but the signature and git's files."""
    present = set()
    for path in model.rglob("*"):
        relative = path.relative_to(model)
        if relative.parts[0] in GIT_PATHS or path.resolve() == signature.resolve():
            continue
        if path.is_symlink():
            raise SigningError(f"{path}: a link; a model folder holds files only (a link could point outside it)")
        if path.is_file():
            present.add(relative.as_posix())
    return present


def _check_folder(model: Path, signature: Path) -> bytes:
    sums_path = model / SUMS
    if not sums_path.is_file():
        raise SigningError(f"{model}: no {SUMS}; the hosts place a model by its {SUMS} (write it with "
                           f"`sha256sum * > {SUMS}` in the reviewed folder), so sovkit signs only a folder with one")
    sums = sums_path.read_bytes()
    listed = set(listed_files(sums, sums_path)) | {SUMS}
    present = _present(model, signature)
    unlisted, absent = sorted(present - listed), sorted(listed - present)
    if unlisted or absent:
        lines = [f"{model}: the folder is not what its {SUMS} lists, which is all the hosts place:"]
        lines += [f"  not listed: {name}" for name in unlisted] + [f"  listed, not here: {name}" for name in absent]
        raise SigningError("\n".join([*lines, f"Make {SUMS} list exactly the files to serve, then sign."]))
    return sums


def _private_key(path: Path, password: bytes | None) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password)
    except TypeError:
        raise SigningError(f"{path}: the key is encrypted: give its password with --password-file"
                           if password is None else f"{path}: the key is not encrypted: drop --password-file") from None
    except ValueError:
        raise SigningError(f"{path}: not a PEM private key that opens (or the password is wrong)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in CURVES:
        raise SigningError(f"{path}: OpenSSF model signing signs offline with elliptic-curve keys on "
                           f"{', '.join(CURVES.values())}; make one with `openssl ecparam -genkey -name prime256v1 "
                           f"-noout | openssl pkcs8 -topk8 -nocrypt -out model-team.pem`")
    return key


def sign_model(model: Path, key: Path, output: Path | None = None, *, certificate: Path | None = None,
               chain: Sequence[Path] = (), password: bytes | None = None) -> SignedModel:
    """Sign the folder `model` with the private key `key` (and its signing `certificate` with the `chain` above it,
    when the site verifies by certificate); returns what was signed and where the signature is."""
    if not model.is_dir():
        raise SigningError(f"{model}: not a folder")
    signature = output or model / DEFAULT_SIGNATURE
    sums = _check_folder(model, signature)
    private = _private_key(key, password)
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    config = signing.Config()
    if certificate is not None:
        try:
            config.use_certificate_signer(private_key=key, signing_certificate=certificate, certificate_chain=chain)
        except ValueError as err:
            raise SigningError(f"{certificate}: {err}") from None
        signer = parse_signer(certificate.read_bytes())
    else:
        config.use_elliptic_key_signer(private_key=key, password=password.decode() if password else None)
        signer = parse_signer(public)
    inside = signature.resolve().is_relative_to(model.resolve())
    ignored = [signature.resolve().relative_to(model.resolve())] if inside else []
    config.set_hashing_config(hashing.Config().set_ignored_paths(paths=ignored)).sign(model, signature)
    return SignedModel(signature, len(listed_files(sums, model / SUMS)) + 1, signer,
                       "sha256:" + hashlib.sha256(sums).hexdigest(), public)
