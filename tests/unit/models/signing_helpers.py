"""Keys and certificates made in the tests (nothing signed is shipped)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def write_key(folder: Path, name: str, curve: ec.EllipticCurve | None = None) -> tuple[Path, Path]:
    """(private key, public key) PEM files of a new elliptic-curve key."""
    key = ec.generate_private_key(curve or ec.SECP256R1())
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def write_certificate(folder: Path, name: str, key_file: Path, issuer_key_file: Path | None = None,
                      issuer_certificate: Path | None = None) -> Path:
    """A certificate for the key in key_file: self-signed (a root) without an issuer, else a signing certificate."""
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    issuer_key = serialization.load_pem_private_key(issuer_key_file.read_bytes(), None) if issuer_key_file else key
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer = (x509.load_pem_x509_certificate(issuer_certificate.read_bytes()).subject if issuer_certificate
              else subject)
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=issuer_key_file is None, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            key_cert_sign=issuer_key_file is None, crl_sign=False,
                                            encipher_only=False, decipher_only=False), critical=True))
    path = folder / f"{name}.crt"
    path.write_bytes(builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return path
