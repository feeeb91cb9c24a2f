"""Signed model weights (OpenSSF model signing, offline: keys or certificates, no transparency log).

A model of the stack may name its `signature`, a file in the in-country model store (a path relative to the
model's source, such as model.sig beside the weights, or a location under the store), and its `signer`, the PEM
file on the machine running sovkit that the signature must verify with: the publisher's or the site's own model
team's elliptic-curve public key, or the certificate(s) their signing certificate chains to. `sovkit validate`
proves here that both are named together, that the signature stays in the store and that the signer file is a
public key or certificates the verifier takes; the weights themselves are verified where they are served
(sovkit/models/verify_weights.py).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from sovkit.config.locations import under_store
from sovkit.config.schema import PROJECT, ModelSpec
from sovkit.config.site import SiteConfig
from sovkit.errors import Problem, short

# The curves OpenSSF model signing signs and verifies with (the ones Sigstore's bundle format names).
CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
MAX_SIGNER_BYTES = 256 * 1024  # a key is under 1 KiB and a chain of certificates a few KiB
DEFAULT_SIGNATURE = "model.sig"  # what `sovkit model sign` writes beside the weights
SIGNER_ALLOWED = ("a PEM elliptic-curve public key (" + ", ".join(CURVES.values()) + ") or PEM certificate(s) the "
                  "signing certificate chains to")


@dataclass(frozen=True)
class Signer:
    """What a signer file holds, as the BOM and the messages name it."""

    kind: str  # "public key" or "certificate"
    fingerprint: str  # sha256:<hex> of the key's SubjectPublicKeyInfo, or of the first certificate (both DER)
    description: str  # "EC P-256 public key", or the certificate's subject


class SignerError(ValueError):
    """A signer file that cannot be used: what was found, what is allowed, how to fix it."""

    def __init__(self, found: str, allowed: str = SIGNER_ALLOWED, fix: str = "") -> None:
        super().__init__(found)
        self.found, self.allowed, self.fix = found, allowed, fix


def _key_kind(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"an RSA-{key.key_size} public key"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "an EdDSA public key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an elliptic-curve public key on {key.curve.name}"
    return "a public key of another kind"


def parse_signer(data: bytes) -> Signer:
    """The signer in a PEM file's bytes; raises SignerError naming what the file holds (never its contents)."""
    if b"PRIVATE KEY-----" in data:
        raise SignerError("a private key", "the signer's public key or certificate: a private key never leaves the "
                          "model team", fix="give its public half (openssl pkey -in KEY -pubout -out signer.pub) and "
                          "keep the private key where it was; treat this one as exposed if it was shared")
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise SignerError("a PEM certificate block that does not parse") from None
        first = certificates[0]
        return Signer("certificate", _fingerprint(first.public_bytes(serialization.Encoding.DER)),
                      first.subject.rfc4514_string() or "a certificate without a subject")
    if b"-----BEGIN PUBLIC KEY-----" in data:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            raise SignerError("a PEM public key block that does not parse") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in CURVES:
            raise SignerError(_key_kind(key), fix="OpenSSF model signing verifies elliptic-curve signatures without "
                              "Sigstore; sign with a P-256, P-384 or P-521 key")
        spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return Signer("public key", _fingerprint(spki), f"EC {CURVES[key.curve.name]} public key")
    raise SignerError("a file with no PEM public key or certificate in it")


def _fingerprint(der: bytes) -> str:
    return "sha256:" + hashlib.sha256(der).hexdigest()


def signer_file(path: str) -> Path:
    """Where a stack's `signer` is: an absolute path, or one relative to the project folder (where sovkit and
    Pulumi run, so a site can keep the keys it trusts beside its stack in git)."""
    from sovkit.stacks import project_root

    return Path(path) if path.startswith("/") else project_root() / path


def read_signer(path: str) -> Signer:
    """The signer file at `path` (see signer_file), on the machine running sovkit; raises SignerError."""
    file = signer_file(path)
    try:
        size = file.stat().st_size
        if not file.is_file():
            raise SignerError(f"{short(path)}: not a file")
        if size > MAX_SIGNER_BYTES:
            raise SignerError(f"{short(path)}: {size:,} bytes", f"a key or certificate file of at most "
                              f"{MAX_SIGNER_BYTES:,} bytes")
        data = file.read_bytes()
    except FileNotFoundError:
        raise SignerError(f"{short(path)}: no such file", f"an existing file: {SIGNER_ALLOWED}") from None
    except PermissionError:
        raise SignerError(f"{short(path)}: a file sovkit may not read", f"a file readable by the user running "
                          f"sovkit: {SIGNER_ALLOWED}") from None
    try:
        return parse_signer(data)
    except SignerError as err:
        raise SignerError(f"{short(path)}: {err.found}", err.allowed, err.fix) from None


def signature_location(spec: ModelSpec) -> str | None:
    """Where a model's signature lies in the store: its `signature` resolved against its source when relative."""
    if spec.signature is None:
        return None
    if _kind(spec.signature) != "relative":
        return spec.signature
    return spec.source.rstrip("/") + "/" + posixpath.normpath(spec.signature)


def _kind(location: str) -> str:
    """path, relative, or the scheme of a URL."""
    if location.startswith("/"):
        return "path"
    scheme = urlsplit(location).scheme.lower() if re.match(r"^[A-Za-z][\w+.-]*://", location) else ""
    return scheme or "relative"


def _signature_findings(spec: ModelSpec, store: str) -> Iterable[tuple[str, str]]:
    """(found, allowed) for a signature location that would leave the model store or the weights' own store."""
    signature = spec.signature or ""
    kind = _kind(signature)
    if kind == "relative":
        parts = signature.split("/")
        if not signature or "\\" in signature or any(p in ("", ".", "..") for p in parts):
            yield short(signature), ("a file beside the weights or below their folder, such as model.sig or "
                                     "signatures/model.sig (no '..', '.' or empty parts)")
        return
    if not under_store(signature, store):
        yield short(signature), f"a file in the in-country model store {store}, or a path relative to the source"
    elif kind != _kind(spec.source):
        yield short(signature), (f"a location of the same kind as the model's source ({_kind(spec.source)}): the "
                                 "step that fetches the weights fetches the signature")


def model_signatures(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Stack rule: a signature and its signer come together; the signature stays in the store, and the signer is a
    public key or certificates the verifier takes."""
    store = site.residency.model_store
    for served, spec in site.serving.models.items():
        base = f"{PROJECT}:models.{served}"
        if spec.signature is None and spec.signer is None:
            continue
        if spec.signer is None:
            yield Problem(f"{base}.signer", "nothing", f"the file the signature must verify with: {SIGNER_ALLOWED}",
                          fix="a signature proves nothing without the signer the site trusts")
        if spec.signature is None:
            yield Problem(f"{base}.signature", "nothing", f"the model's signature in the model store, such as "
                          f"{DEFAULT_SIGNATURE} beside the weights (`sovkit model sign` writes it)",
                          fix="or remove signer: the model is then proven by its revision alone")
        else:
            for found, allowed in _signature_findings(spec, store):
                yield Problem(f"{base}.signature", found, allowed)
        if spec.signer is not None:
            try:
                read_signer(spec.signer)
            except SignerError as err:
                yield Problem(f"{base}.signer", err.found, err.allowed, fix=err.fix)


RULES = (model_signatures,)
