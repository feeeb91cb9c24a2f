"""A pack is assembled from a verify run and signed with the site's key; `evidence verify` accepts it with the
auditor's public key, and names the file or the key when one byte changed, a file went missing or was added, or
the key is not the site's."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import stat
import tarfile
from pathlib import Path

import pytest
from verify_runs import changed, local_site, results, write_run

from sovkit.cli import run
from sovkit.evidence.keys import PRIVATE_KEY, PUBLIC_KEY, load_public_key, site_signer
from sovkit.evidence.pack import (
    ATTESTATION,
    BOM,
    HOST_FACTS,
    LICENCE_WAIVERS,
    REPORT,
    RUN,
    build_pack,
    cover_path,
)
from sovkit.evidence.verify import verify_pack


@pytest.fixture
def made(tmp_path: Path) -> tuple[Path, Path]:
    """(the pack, the auditor's copy of the public key)."""
    compliance = write_run(tmp_path / "compliance", results())
    key_dir = tmp_path / "evidence-key"
    pack = build_pack(local_site(), compliance, tmp_path / "packs", key_dir)
    auditor_copy = tmp_path / "auditor.pem"
    auditor_copy.write_bytes((key_dir / PUBLIC_KEY).read_bytes())
    return pack, auditor_copy


def members(pack: Path) -> dict[str, bytes]:
    with tarfile.open(pack, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def rewrite(pack: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(pack, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def evidence_verify(pack: Path, key: Path, capsys) -> tuple[int, str]:
    status = run(["evidence", "verify", str(pack), "--public-key", str(key)])
    out = capsys.readouterr()
    return status, out.out + out.err


def test_a_pack_holds_the_run_its_facts_and_metadata_and_verifies(made, capsys):
    pack, key = made
    files = members(pack)
    assert {REPORT, "compliance/report.html", "compliance/junit.xml", "compliance/hosts/serving-1.jsonl",
            RUN, HOST_FACTS, ATTESTATION, "public-key.pem"} <= set(files)
    meta = json.loads(files[RUN])
    assert meta["operator"]["name"] == local_site().site.operator_name
    assert meta["time_source"]["site_ntp_servers"] == ["198.51.100.123"]
    assert set(meta["tools"]) >= {"sovkit", "python", "ansible", "pytest-testinfra"}
    assert meta["inputs"]["stack"]["path"].endswith("Pulumi.local.yaml")
    assert meta["inputs"]["runtime_lock"]["path"].endswith("runtime/cpu.txt")
    facts = json.loads(files[HOST_FACTS])
    assert facts["serving-1"]["SOV-DNS-001"]["test_SOV-DNS-001"] == ["nameservers: ['198.51.100.53']"]
    statement = json.loads(base64.b64decode(json.loads(files[ATTESTATION])["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert {s["name"] for s in statement["subject"]} == set(files) - {ATTESTATION}
    status, out = evidence_verify(pack, key, capsys)
    assert status == 0, out
    assert "verified: signed by the key in" in out


def test_the_site_key_is_made_once_private_and_reused(tmp_path):
    key_dir = tmp_path / "evidence-key"
    first = site_signer(key_dir)
    assert stat.S_IMODE((key_dir / PRIVATE_KEY).stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert site_signer(key_dir).public_key.keyid == first.public_key.keyid


def test_one_byte_changed_is_named(made, capsys):
    pack, key = made
    files = members(pack)
    html = bytearray(files["compliance/report.html"])
    html[10] ^= 1
    rewrite(pack, {**files, "compliance/report.html": bytes(html)})
    status, out = evidence_verify(pack, key, capsys)
    assert status == 1
    assert "altered (sha256 differs from the signed statement): compliance/report.html" in out


def test_a_removed_file_is_named(made, capsys):
    pack, key = made
    rewrite(pack, {n: d for n, d in members(pack).items() if n != "compliance/junit.xml"})
    status, out = evidence_verify(pack, key, capsys)
    assert status == 1
    assert "missing: compliance/junit.xml" in out


def test_an_added_file_is_named(made, capsys):
    pack, key = made
    rewrite(pack, {**members(pack), "compliance/waiver.txt": b"all fine, trust us\n"})
    status, out = evidence_verify(pack, key, capsys)
    assert status == 1
    assert "not named by the signed statement: compliance/waiver.txt" in out


def test_a_pack_signed_by_another_key_is_refused(made, tmp_path, capsys):
    pack, _ = made
    other = tmp_path / "other-site-key"
    site_signer(other)
    status, out = evidence_verify(pack, other / PUBLIC_KEY, capsys)
    assert status == 1
    assert "wrong key: the pack is signed by key" in out
    assert str(other / PUBLIC_KEY) in out


def test_a_key_file_that_is_no_key_is_named(made, tmp_path, capsys):
    pack, _ = made
    junk = tmp_path / "key.pem"
    junk.write_text("not a key\n")
    status, out = evidence_verify(pack, junk, capsys)
    assert status == 1
    assert f"{junk}: not a PEM public key" in out


def test_packing_again_replaces_the_pack_of_the_same_run(made, tmp_path):
    pack, key = made
    again = build_pack(local_site(), tmp_path / "compliance", tmp_path / "packs", tmp_path / "evidence-key")
    assert again == pack
    assert sorted(p.name for p in pack.parent.iterdir()) == [cover_path(pack).name, pack.name]
    assert verify_pack(again, key).ok


def test_the_cover_page_opens_with_the_verdict_and_names_the_packs_digest_and_signer(made, tmp_path):
    pack, key = made
    cover = cover_path(pack).read_text()
    digest = hashlib.sha256(pack.read_bytes()).hexdigest()
    keyid = load_public_key(key).keyid
    assert f"sha256 <code>{digest}</code>" in cover and f"signed by key <code>{keyid}</code>" in cover
    body = cover.split("<body>", 1)[1]
    assert body.index("<h1") < body.index("Evidence pack") < body.index("Verdict per clause") < body.index(
        "<h2>Host ")  # the verdict, the seal, the clauses, then the hosts


def test_no_verify_run_is_a_clear_error(tmp_path, capsys):
    status = run(["evidence", "local", "--compliance-dir", str(tmp_path / "none"), "-o", str(tmp_path / "out")])
    assert status == 1
    assert f"{tmp_path / 'none' / 'report.json'}: no verify report here" in capsys.readouterr().err


def test_a_statement_rewritten_after_signing_is_refused(made, capsys):
    """Whoever changes a file and its digest in the statement still cannot make the signature match."""
    pack, key = made
    files = members(pack)
    envelope = json.loads(files[ATTESTATION])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    forged = b"<html>all compliant</html>\n"
    for subject in statement["subject"]:
        if subject["name"] == "compliance/report.html":
            subject["digest"]["sha256"] = hashlib.sha256(forged).hexdigest()
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    rewrite(pack, {**files, "compliance/report.html": forged, ATTESTATION: json.dumps(envelope).encode()})
    status, out = evidence_verify(pack, key, capsys)
    assert status == 1
    assert "the signature does not verify with the key in" in out


def boxes(box):
    yield box
    for child in getattr(box, "children", None) or []:
        yield from boxes(child)


@pytest.mark.filterwarnings("ignore:HarfBuzz-Subset")  # it subsets fonts of PDFs; the test writes none
def test_the_cover_page_prints_on_a4_within_the_page_verdict_and_clauses_first(tmp_path):
    """Laid out by WeasyPrint as a printer gets it: nothing wider than an A4 page (a long evidence line or failure
    message wraps), and the first page holds the verdict, the seal and every clause's verdict."""
    from weasyprint import HTML

    broken = changed(results(), "serving-1", "SOV-NET-003", outcome="failed", message="egress open to " + "x" * 400,
                     evidence=["nft list ruleset: " + "y" * 500])
    pack = build_pack(local_site(), write_run(tmp_path / "compliance", broken), tmp_path / "packs",
                      tmp_path / "key")
    pages = HTML(filename=str(cover_path(pack))).render().pages
    width = pages[0].width
    assert (round(width), round(pages[0].height)) == (794, 1123)  # A4 in CSS pixels
    too_wide = {(n, type(b).__name__, b.element_tag) for n, p in enumerate(pages) for b in boxes(p._page_box)
                if b.position_x + b.margin_width() > width + 0.5}
    assert not too_wide
    first = " ".join(b.text for b in boxes(pages[0]._page_box) if hasattr(b, "text"))
    assert first.startswith("NOT COMPLIANT") and "Evidence pack" in first
    for clause in local_site().profile.clauses:
        assert f"({clause})" in first, f"{clause} is not on the first page"


def test_the_pack_holds_the_sites_ml_bom_dated_as_the_pack(made):
    """The AI bill of materials travels signed with the run: CycloneDX 1.6 by the library's own schema check,
    every model the site serves in it, its timestamp the pack's."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    pack, _ = made
    files = members(pack)
    bom = files[BOM].decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom) is None
    document = json.loads(bom)
    models = {c["name"] for c in document["components"] if c["type"] == "machine-learning-model"}
    assert models == set(local_site().serving.models)
    assert document["metadata"]["timestamp"][:19] == json.loads(files[RUN])["packed_at"][:19]
    assert verify_pack(pack, made[1]).ok


def test_the_pack_records_each_licence_waiver_the_site_relies_on(tmp_path):
    """in-mh-pune serves sarvam-1 (research-only licence) for public service under a waiver: its pack names the
    licence, the use waived, the justification and the approver; local relies on none."""
    from sovkit.config import load_stack
    from sovkit.stacks import find_stack

    pune = load_stack(find_stack("in-mh-pune"))
    pack = build_pack(pune, write_run(tmp_path / "compliance", results()), tmp_path / "packs", tmp_path / "key")
    [waiver] = json.loads(members(pack)[LICENCE_WAIVERS])
    assert waiver["waived_uses"] == ["public-service"] and waiver["approver"] and waiver["justification"]
    assert waiver["model"] in pune.serving.models and waiver["licence"].startswith("LicenseRef-")
    local = build_pack(local_site(), write_run(tmp_path / "local", results()), tmp_path / "local-packs",
                       tmp_path / "key")
    assert json.loads(members(local)[LICENCE_WAIVERS]) == []
