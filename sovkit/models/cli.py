"""`sovkit model sign` and `sovkit model verify`: a site's model team signs a reviewed model folder, and anyone
checks a folder against its signature, offline."""

from __future__ import annotations

from pathlib import Path

import click

from sovkit.clitools import console, errors
from sovkit.config.signers import DEFAULT_SIGNATURE
from sovkit.models.signing import SigningError, sign_model
from sovkit.models.verify_weights import verify_model

EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group("model")
def model() -> None:
    """Sign model weights after review, and verify them (OpenSSF model signing, offline)."""


@model.command("sign")
@click.argument("folder", type=FOLDER)
@click.option("--key", "key", type=EXISTING_FILE, required=True,
              help="The model team's PEM elliptic-curve private key (P-256, P-384 or P-521).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the signature. Default: model.sig in FOLDER (left out of what it signs).")
@click.option("--certificate", type=EXISTING_FILE,
              help="The key's signing certificate, when the site verifies by certificate.")
@click.option("--chain", "chain", type=EXISTING_FILE, multiple=True,
              help="A certificate above the signing certificate, up to the root the site trusts (repeatable).")
@click.option("--password-file", type=EXISTING_FILE, help="A file holding the key's password, if it is encrypted.")
@click.option("--public-key", "public_key", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the key's public half here: the file a stack names as the model's signer.")
def sign(folder: Path, key: Path, output: Path | None, certificate: Path | None, chain: tuple[Path, ...],
         password_file: Path | None, public_key: Path | None) -> None:
    """Sign FOLDER, a reviewed model (its files and the SHA256SUMS listing them), with the model team's key."""
    if chain and certificate is None:
        raise click.UsageError("--chain goes with --certificate (the chain above the signing certificate)")
    password = password_file.read_bytes().rstrip(b"\r\n") if password_file else None
    try:
        signed = sign_model(folder, key, output, certificate=certificate, chain=chain, password=password)
    except SigningError as err:
        errors.print(str(err), markup=False)
        raise SystemExit(1) from None
    if public_key is not None:
        public_key.write_bytes(signed.public_pem)
    if certificate is not None:
        signer = "the root certificate the site trusts (the last --chain file, or the certificate if self-signed)"
    else:
        signer = public_key or "the public half of the key (--public-key FILE writes it)"
    console.print(f"signed {folder}: {signed.files} files, by {signed.signer.description} "
                  f"{signed.signer.fingerprint}\n  signature: {signed.signature}\n  in the stack: revision: "
                  f"{signed.revision}, signature: {_relative(signed.signature, folder)}, signer: {signer}",
                  markup=False)


@model.command("verify")
@click.argument("folder", type=FOLDER)
@click.option("--signature", type=EXISTING_FILE, help=f"Default: {DEFAULT_SIGNATURE} in FOLDER.")
@click.option("--signer", type=EXISTING_FILE, required=True,
              help="PEM elliptic-curve public key, or PEM certificate(s) the signing certificate chains to.")
def verify(folder: Path, signature: Path | None, signer: Path) -> None:
    """Verify FOLDER against its signature: exit 1, naming each altered, added or missing file, if it differs."""
    result = verify_model(folder, signature or folder / DEFAULT_SIGNATURE, signer)
    (console if result.verified else errors).print(result.report(), markup=False)
    if not result.verified:
        raise SystemExit(1)


def _relative(signature: Path, folder: Path) -> str:
    """The signature as the stack names it: relative to the model's folder when it lies inside it."""
    try:
        return signature.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return f"{signature} (copy it into the model store)"
