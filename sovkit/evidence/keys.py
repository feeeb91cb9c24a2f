"""The site's evidence key: an Ed25519 key pair kept offline in the site's workspace, made on first use.

The private half never leaves `.sovkit/<site>/evidence-key/` (mode 0600 in a 0700 folder); the public half is
written beside it as PEM, which is what the country's auditors are given and what `sovkit evidence verify
--public-key` reads. Signing and verifying are securesystemslib's (CryptoSigner, SSlibKey).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from securesystemslib.signer import CryptoSigner, SSlibKey

PRIVATE_KEY = "private.pem"
PUBLIC_KEY = "public.pem"


class EvidenceKeyError(ValueError):
    """A key file that cannot be used; the message names the file and what was found (never the key itself)."""


def site_signer(key_dir: Path) -> CryptoSigner:
    """The signer of the key kept in key_dir, made (with its public key beside it) when the folder holds none."""
    private = key_dir / PRIVATE_KEY
    if not private.exists():
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        private_key = Ed25519PrivateKey.generate()
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as stream:
            stream.write(private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        (key_dir / PUBLIC_KEY).write_bytes(
            private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
        return CryptoSigner(private_key)
    try:
        private_key = load_pem_private_key(private.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise EvidenceKeyError(f"{private}: not an unencrypted PEM (PKCS#8) private key sovkit can sign with; "
                               "move it away to have a new key made") from None
    if not (key_dir / PUBLIC_KEY).exists():  # the public half is derived: put it back if someone removed it
        (key_dir / PUBLIC_KEY).write_bytes(
            private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return CryptoSigner(private_key)


def public_key_from_pem(pem: bytes, where: str) -> SSlibKey:
    """The public key of a PEM SubjectPublicKeyInfo, as securesystemslib verifies with it; `where` names its file."""
    try:
        return SSlibKey.from_crypto(load_pem_public_key(pem))
    except ValueError as err:
        raise EvidenceKeyError(f"{where}: not a PEM public key sovkit can verify with "
                               f"(an Ed25519, ECDSA or RSA SubjectPublicKeyInfo): {err}") from None


def load_public_key(path: Path) -> SSlibKey:
    try:
        pem = path.read_bytes()
    except OSError as err:
        raise EvidenceKeyError(f"{path}: cannot read the public key ({err.strerror})") from None
    return public_key_from_pem(pem, str(path))
