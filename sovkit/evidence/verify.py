"""`sovkit evidence verify PACK`: is the pack signed by the key the auditor holds, complete, and unaltered?

The pack is read in memory, never unpacked onto disk. The signature is checked first (securesystemslib's DSSE
envelope); the files are then compared with the statement's subjects, so a reader is told both whether the
manifest is the site's and which files differ from it.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from sovkit.evidence.keys import load_public_key, public_key_from_pem
from sovkit.evidence.pack import ATTESTATION, PAYLOAD_TYPE, PUBLIC_KEY_FILE, EvidenceError


@dataclass
class PackCheck:
    pack: Path
    key_source: str  # the public key file checked against, or the pack's own key
    signature_problem: str = ""  # empty: signed by that key
    missing: list[str] = field(default_factory=list)  # named by the statement, absent from the pack
    unexpected: list[str] = field(default_factory=list)  # in the pack, not named by the statement
    altered: list[str] = field(default_factory=list)  # sha256 differs from the statement's
    checked: int = 0
    predicate: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.signature_problem or self.missing or self.unexpected or self.altered)

    def report(self) -> str:
        site, started = self.predicate.get("site", "?"), self.predicate.get("verifyStarted", "?")
        what = f"{self.pack}: {site}, verify run of {started}"
        if self.ok:
            return (f"{what}\nverified: signed by the key in {self.key_source}; {self.checked} files, all present and "
                    "unaltered, none unnamed")
        lines = [f"{what}\nNOT verified:"]
        if self.signature_problem:
            lines.append(f"  signature: {self.signature_problem}")
        for label, paths in (("missing", self.missing), ("not named by the signed statement", self.unexpected),
                             ("altered (sha256 differs from the signed statement)", self.altered)):
            lines += [f"  {label}: {p}" for p in paths]
        return "\n".join(lines)


def read_pack(pack: Path) -> dict[str, bytes]:
    """{path: bytes} of every member; anything but a regular file with a plain relative path is refused."""
    try:
        with tarfile.open(pack, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                if not member.isfile() or member.name.startswith("/") or ".." in Path(member.name).parts:
                    raise EvidenceError(f"{pack}: member {member.name!r} is not a plain file inside the pack")
            return {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    except (tarfile.TarError, EOFError, OSError) as err:
        raise EvidenceError(f"{pack}: not a readable evidence pack (a tar.gz): {err}") from None


def signature_problem(envelope: Envelope, key: SSlibKey, key_source: str) -> str:
    """Empty when the envelope is signed by key; otherwise what is wrong, in words."""
    signed_by = sorted(envelope.signatures)
    if key.keyid not in signed_by:
        return (f"wrong key: the pack is signed by key {', '.join(signed_by) or '(none)'}, not by the key in "
                f"{key_source} ({key.keyid}); ask the site for its evidence public key, or this pack was not "
                "signed by that site")
    try:
        envelope.verify([key], 1)
    except VerificationError:
        return f"the signature does not verify with the key in {key_source}: the signed statement was altered"
    return ""


def verify_pack(pack: Path, public_key: Path | None = None) -> PackCheck:
    files = read_pack(pack)
    if ATTESTATION not in files:
        raise EvidenceError(f"{pack}: no {ATTESTATION}; not a signed evidence pack of `sovkit evidence`")
    envelope = _envelope(pack, files.pop(ATTESTATION))
    if public_key:
        key, source = load_public_key(public_key), str(public_key)
    elif PUBLIC_KEY_FILE in files:
        key = public_key_from_pem(files[PUBLIC_KEY_FILE], f"{pack}: {PUBLIC_KEY_FILE}")
        source = f"the pack's own {PUBLIC_KEY_FILE} (integrity only: pass --public-key to prove who signed it)"
    else:
        raise EvidenceError(f"{pack}: no {PUBLIC_KEY_FILE} in the pack; pass --public-key FILE")
    subjects, predicate = _statement(pack, envelope)
    expected = {s["name"]: s["digest"]["sha256"] for s in subjects}
    return PackCheck(
        pack, source, signature_problem(envelope, key, source),
        missing=sorted(set(expected) - set(files)), unexpected=sorted(set(files) - set(expected)),
        altered=sorted(n for n in set(expected) & set(files) if hashlib.sha256(files[n]).hexdigest() != expected[n]),
        checked=len(files), predicate=predicate)


def _envelope(pack: Path, data: bytes) -> Envelope:
    try:
        envelope = Envelope.from_dict(json.loads(data))
    except (ValueError, KeyError, TypeError) as err:
        raise EvidenceError(f"{pack}: {ATTESTATION} is not a DSSE envelope ({err})") from None
    if envelope.payload_type != PAYLOAD_TYPE:
        raise EvidenceError(f"{pack}: {ATTESTATION} carries {envelope.payload_type!r}, not {PAYLOAD_TYPE!r}")
    return envelope


def _statement(pack: Path, envelope: Envelope) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The subjects and predicate of the envelope's in-toto Statement, checked by in-toto's own model."""
    try:
        stmt = Statement.copy_from_pb(json_format.Parse(envelope.payload, Statement([], "", {}).pb))
        stmt.validate()
    except (json_format.ParseError, ValueError) as err:
        raise EvidenceError(f"{pack}: {ATTESTATION} holds no valid in-toto Statement v1: {err}") from None
    data = json_format.MessageToDict(stmt.pb)
    return data["subject"], data.get("predicate", {})
