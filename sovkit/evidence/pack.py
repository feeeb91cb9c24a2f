"""`sovkit evidence STACK`: the latest verify run of a site as one signed file an auditor can check offline.

A pack is a single tar.gz (one file to archive, attach to a CI run or hand over; read without unpacking it):

    compliance/...          every file of the verify output folder (report.json, report.html, junit.xml,
                            the per-host records, oscal/ when present), byte for byte
    run.json                the run's metadata (sovkit.evidence.facts): tools, time source, operator, input digests
    host-facts.json         what each check read on its host, by host, control and check
    bom.cdx.json            the site's AI bill of materials (CycloneDX ML-BOM, as `sovkit bom` writes it)
    licence-waivers.json    each model served although its licence does not allow a use of the site: the
                            licence, the uses waived, the justification and the approver (empty: none waived)
    public-key.pem          the public half of the site's evidence key (a convenience: auditors use their own copy)
    attestation.dsse.json   the manifest: an in-toto Statement v1 whose subjects are every other file with its
                            sha256, in a DSSE envelope signed with the site's offline Ed25519 key

No transparency log or online service is involved: the signature is checked against the public key the auditors
hold (`sovkit evidence verify PACK --public-key FILE`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.signer import Signer

from sovkit.bundle.manifest import MANIFEST
from sovkit.config import SiteConfig
from sovkit.config.licences import licence_waivers
from sovkit.evidence.facts import host_facts, run_metadata
from sovkit.evidence.keys import PUBLIC_KEY, site_signer
from sovkit.verify.html import Seal, render_html

ATTESTATION = "attestation.dsse.json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"  # the DSSE payload type of an in-toto Statement
# An identifier, not an address: a pack names no online service.
PREDICATE_TYPE = "urn:sovkit:evidence-pack:v1"
COMPLIANCE = "compliance"
RUN = "run.json"
HOST_FACTS = "host-facts.json"
BOM = "bom.cdx.json"
LICENCE_WAIVERS = "licence-waivers.json"
PUBLIC_KEY_FILE = "public-key.pem"
REPORT = f"{COMPLIANCE}/report.json"


class EvidenceError(ValueError):
    """A pack that cannot be made or read; the message names the file and what was found."""


def read_report(compliance_dir: Path) -> dict[str, Any]:
    path = compliance_dir / "report.json"
    if not path.is_file():
        raise EvidenceError(f"{path}: no verify report here; run `sovkit verify STACK` first "
                            "(or pass its --output-dir as --compliance-dir)")
    return parse_report(path.read_bytes(), str(path))


def parse_report(data: bytes, where: str) -> dict[str, Any]:
    """A report.json of `sovkit verify` from its bytes (`where` names it in errors)."""
    try:
        report = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EvidenceError(f"{where}: not a report of `sovkit verify` (not JSON: {err})") from None
    if not isinstance(report, dict) or not isinstance(report.get("results"), dict):
        raise EvidenceError(f"{where}: not a report of `sovkit verify` (no 'results' by host)")
    return report


def folder_files(root: Path, prefix: str) -> dict[str, bytes]:
    """{prefix/relative path: bytes} of every regular file under root; a link is refused (it could point outside)."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            raise EvidenceError(f"{path}: a link in the verify output; a pack holds files only")
        if path.is_file():
            files[f"{prefix}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return files


def pack_contents(site: SiteConfig, compliance_dir: Path, report: dict[str, Any], public_pem: bytes,
                  now: dt.datetime) -> dict[str, bytes]:
    """Every file of the pack but the attestation, by its path in the pack."""
    return {**folder_files(compliance_dir, COMPLIANCE),
            RUN: _json(run_metadata(site, report, now)),
            HOST_FACTS: _json(host_facts(report)),
            BOM: site_bom(site, now),
            LICENCE_WAIVERS: _json(licence_waivers(site)),
            PUBLIC_KEY_FILE: public_pem}


def site_bom(site: SiteConfig, now: dt.datetime) -> bytes:
    """The site's ML-BOM as `sovkit bom` writes it, dated as the pack, with the bundle when the site has one and the
    quality gate's results."""
    from sovkit.render.bom import bom_document, gate_evaluations
    from sovkit.render.gate import read_reports
    from sovkit.workspace import SiteWorkspace

    workspace = SiteWorkspace.of(site.name)
    manifest = workspace.bundle / MANIFEST
    return bom_document(site, timestamp=now, evaluations=gate_evaluations(site, read_reports(site, workspace.gate)),
                        bundle_manifest=manifest.read_bytes() if manifest.is_file() else None).encode()


def statement(files: dict[str, bytes], predicate: dict[str, Any]) -> dict[str, Any]:
    """The in-toto Statement v1 naming every file with its sha256 (validated by in-toto's own model)."""
    subjects = [ResourceDescriptor(name=name, digest={"sha256": hashlib.sha256(data).hexdigest()}).pb
                for name, data in sorted(files.items())]
    stmt = Statement(subjects, PREDICATE_TYPE, predicate)
    stmt.validate()
    return json_format.MessageToDict(stmt.pb)


def signed_attestation(files: dict[str, bytes], predicate: dict[str, Any], signer: Signer) -> bytes:
    envelope = Envelope(json.dumps(statement(files, predicate), sort_keys=True).encode(), PAYLOAD_TYPE, {})
    envelope.sign(signer)
    return _json(envelope.to_dict())


def pack_name(site: str, verify_started: str) -> str:
    """<site>-<verify start, UTC, compact>.tar.gz: one pack per verify run, so packing the same run again replaces
    its pack."""
    try:
        stamp = dt.datetime.fromisoformat(verify_started).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    except ValueError:
        stamp = "unknown-start"
    return f"{site}-{stamp}.tar.gz"


def write_tar(path: Path, files: dict[str, bytes], mtime: float) -> None:
    """A tar.gz of the files (regular, 0644, root-owned, one mtime), written beside the target and renamed onto it
    so a reader never meets half a pack."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, mtime
            tar.addfile(info, io.BytesIO(data))
    os.replace(partial, path)


def build_pack(site: SiteConfig, compliance_dir: Path, out_dir: Path, key_dir: Path,
               now: dt.datetime | None = None) -> Path:
    """Assemble and sign the pack of the verify run in compliance_dir; returns its path under out_dir."""
    now = now or dt.datetime.now(dt.UTC)
    report = read_report(compliance_dir)  # before a key is made: no run, no pack
    signer = site_signer(key_dir)
    files = pack_contents(site, compliance_dir, report, (key_dir / PUBLIC_KEY).read_bytes(), now)
    run = json.loads(files[RUN])
    predicate = {"site": site.name, "verifyStarted": run["verify_started"], "packedAt": run["packed_at"]}
    files[ATTESTATION] = signed_attestation(files, predicate, signer)
    target = out_dir / pack_name(site.name, run["verify_started"])
    write_tar(target, files, now.timestamp())
    write_cover(target, report, signer.public_key.keyid, key_dir / PUBLIC_KEY)
    return target


def cover_path(pack: Path) -> Path:
    """The pack's cover page beside it: <site>-<start>.html."""
    return pack.with_name(pack.name.removesuffix(".tar.gz") + ".html")


def write_cover(pack: Path, report: dict[str, Any], keyid: str, public_key: Path) -> Path:
    """The report as people read it, opened by the pack's digest and signer: the page printed for the file's
    record (the report inside the pack cannot name the digest of the pack that holds it)."""
    seal = Seal(pack.name, hashlib.sha256(pack.read_bytes()).hexdigest(), keyid, str(public_key))
    path = cover_path(pack)
    path.write_text(render_html(report, seal))
    return path


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()
