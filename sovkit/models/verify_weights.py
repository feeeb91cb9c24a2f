"""Verify a model folder against its OpenSSF model signature before a model server starts.

    python3 -m sovkit.models.verify_weights --signature SIG --signer PEM [--json] DIR
    python3 verify_weights.py ...          # the same file copied alone onto a serving host

The signer is the PEM elliptic-curve public key the model was signed with, or the PEM certificate(s) its signing
certificate chains to. Exit 0: every file of DIR is what was signed, and nothing else is there. Exit 1: refused,
with each altered, added or missing file named (or why the signature itself does not verify). Exit 2: a file
could not be read.

This module imports nothing of sovkit: a host runs it with only the model-signing library (from the bundle's
wheels), so it is the same check on the control node, on a host and in a pod.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from model_signing import verifying

SIGNATURE_MISMATCH = "Signature mismatch: "  # how model-signing 1.1 reports files that differ from the signed ones
_DIFFERENCES = {  # model-signing's words for each kind of difference -> ours
    "added": re.compile(r"^Extra files found in model '.*?': (.+)$", re.S),
    "missing": re.compile(r"^Missing files in model '.*?': (.+)$", re.S),
    "altered": re.compile(r"^Hash mismatch for '(.+?)': ", re.S),
}


@dataclass(frozen=True)
class WeightsVerification:
    """The verdict on one model folder: verified, or what differs from what was signed."""

    model: str
    signature: str
    signer: str
    altered: list[str] = field(default_factory=list)  # signed files whose bytes differ
    added: list[str] = field(default_factory=list)  # files present that were not signed
    missing: list[str] = field(default_factory=list)  # signed files absent
    problem: str = ""  # why the signature itself is refused (not by this signer, unreadable, ...)

    @property
    def verified(self) -> bool:
        return not (self.altered or self.added or self.missing or self.problem)

    def report(self) -> str:
        if self.verified:
            return f"{self.model}: verified against {self.signature}, signed by {self.signer}"
        lines = [f"{self.model}: REFUSED, not what {self.signer} signed in {self.signature}"]
        lines += [f"  altered (its bytes differ from the signed ones): {name}" for name in self.altered]
        lines += [f"  added (not signed): {name}" for name in self.added]
        lines += [f"  missing (signed, not here): {name}" for name in self.missing]
        lines += [f"  {self.problem}"] if self.problem else []
        return "\n".join(lines)


def _verifier(signer: Path) -> verifying.Config:
    """The library's offline verifier for a signer file: a public key, or certificates to chain to."""
    text = signer.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in text:
        return verifying.Config().use_certificate_verifier(certificate_chain=[signer])
    if b"-----BEGIN PUBLIC KEY-----" in text:
        return verifying.Config().use_elliptic_key_verifier(public_key=signer)
    raise ValueError(f"{signer} holds no PEM public key or certificate")


def _differences(message: str) -> dict[str, list[str]] | None:
    """The files model-signing's mismatch message names, by kind; None when the message is not one."""
    if not message.startswith(SIGNATURE_MISMATCH):
        return None
    try:
        items = ast.literal_eval(message.removeprefix(SIGNATURE_MISMATCH))
    except (ValueError, SyntaxError):
        return None
    found: dict[str, list[str]] = {"altered": [], "added": [], "missing": []}
    for item in items if isinstance(items, list) else []:
        for kind, pattern in _DIFFERENCES.items():
            match = pattern.match(str(item))
            if match:
                found[kind] += match.group(1).split(", ") if kind != "altered" else [match.group(1)]
                break
        else:
            return None
    return found if any(found.values()) else None


def verify_model(model: Path | str, signature: Path | str, signer: Path | str) -> WeightsVerification:
    """Verify the folder `model` against `signature` with `signer` (OpenSSF model signing, offline). Raises
    OSError when the signature or the signer cannot be read; every other refusal is in the verdict."""
    model, signature, signer = Path(model), Path(signature), Path(signer)
    names = {"model": str(model), "signature": str(signature), "signer": str(signer)}
    if not model.is_dir():
        return WeightsVerification(**names, problem=f"{model} is not a folder")
    signature.stat()  # a missing signature or signer is a fault of the run, not a verdict on the weights
    try:
        config = _verifier(signer)
        config.verify(model, signature)
    except ValueError as err:
        differences = _differences(str(err))
        if differences is not None:
            return WeightsVerification(**names, **differences)
        return WeightsVerification(**names, problem=f"the signature does not verify with this signer: "
                                                    f"{str(err).strip()}")
    except OSError:
        raise
    except Exception as err:  # a forged or foreign signature fails in the library's own ways, not all ValueError
        return WeightsVerification(**names, problem=f"the signature does not verify with this signer: "
                                                    f"{type(err).__name__}: {err}".rstrip(": "))
    return WeightsVerification(**names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a model folder against its OpenSSF model signature.")
    parser.add_argument("model", type=Path, help="the model folder, as it will be served")
    parser.add_argument("--signature", type=Path, required=True, help="the model's signature file")
    parser.add_argument("--signer", type=Path, required=True,
                        help="PEM elliptic-curve public key, or PEM certificate(s) the signing certificate chains to")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    args = parser.parse_args(argv)
    try:
        result = verify_model(args.model, args.signature, args.signer)
    except OSError as err:
        print(f"cannot verify {args.model}: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**asdict(result), "verified": result.verified}, indent=1, sort_keys=True))
    else:
        print(result.report(), file=sys.stdout if result.verified else sys.stderr)
    return 0 if result.verified else 1


if __name__ == "__main__":
    sys.exit(main())
