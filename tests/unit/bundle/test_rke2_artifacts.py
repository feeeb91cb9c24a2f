"""RKE2's air-gap artifacts in the offline bundle: listed for every RKE2 site, carried only when verified (the rule
the rke2 role applies on the hosts: the checksum file pinned by the stack, the rest by that file)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import yaml

from sovkit.bundle.rke2 import build_rke2, listing, verify_folder
from sovkit.config import load_stack

ROOT = Path(__file__).resolve().parents[3]
ZA = load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")
PUNE = load_stack(ROOT / "stacks" / "Pulumi.in-mh-pune.yaml")
FILES = ("rke2.linux-amd64.tar.gz", "rke2-images.linux-amd64.tar.zst", "sha256sum-amd64.txt")


def artifact_set(folder: Path) -> str:
    """A small test-made release: two artifacts and a checksum file over them; returns the checksum file's pin."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FILES[0]).write_bytes(b"tarball of a test release\n")
    (folder / FILES[1]).write_bytes(b"images of a test release\n")
    sums = "".join(f"{hashlib.sha256((folder / name).read_bytes()).hexdigest()}  {name}\n" for name in FILES[:2])
    (folder / FILES[2]).write_text(sums)
    return "sha256:" + hashlib.sha256(sums.encode()).hexdigest()


def test_listing_names_the_mirror_the_files_and_the_pin():
    assert listing(ZA) == {"version": "v1.33.5+rke2r1", "mirror": "https://mirror.dc.gov.example/rke2/v1.33.5+rke2r1/",
                           "files": list(FILES), "checksums_sha256": ZA.platform.rke2_checksums_sha256}


def test_an_rke2_site_lists_its_artifacts_and_a_hosts_site_none(tmp_path):
    assert build_rke2(ZA, tmp_path) == "listed only: the in-country mirror carries them"
    assert yaml.safe_load((tmp_path / "rke2" / "artifacts.yaml").read_text()) == listing(ZA)
    assert build_rke2(PUNE, tmp_path) is None
    assert not (tmp_path / "rke2").exists()


def test_good_artifacts_are_carried(tmp_path):
    pin = artifact_set(tmp_path / "given")
    site = dataclasses.replace(ZA, platform=ZA.platform.model_copy(update={
        "rke2_artifacts_folder": str(tmp_path / "given"), "rke2_checksums_sha256": pin}))
    assert verify_folder(tmp_path / "given", pin) == []
    assert build_rke2(site, tmp_path / "bundle").startswith("carried from")
    for name in FILES:
        carried = tmp_path / "bundle" / "rke2" / "v1.33.5+rke2r1" / name
        assert carried.read_bytes() == (tmp_path / "given" / name).read_bytes()


def test_a_missing_artifact_is_named(tmp_path):
    pin = artifact_set(tmp_path)
    (tmp_path / FILES[1]).unlink()
    assert verify_folder(tmp_path, pin) == [f"{tmp_path / FILES[1]}: missing"]


def test_a_tampered_checksum_file_is_named(tmp_path):
    pin = artifact_set(tmp_path)
    with (tmp_path / FILES[2]).open("a") as sums:
        sums.write("0" * 64 + "  extra\n")
    [problem] = verify_folder(tmp_path, pin)
    assert problem.startswith(f"{tmp_path / FILES[2]}: its SHA-256 is ") and "rke2ChecksumsSha256" in problem


def test_a_tampered_artifact_is_named(tmp_path):
    pin = artifact_set(tmp_path)
    (tmp_path / FILES[0]).write_bytes(b"something else\n")
    [problem] = verify_folder(tmp_path, pin)
    assert problem.startswith(f"{tmp_path / FILES[0]}: its SHA-256 is ") and "as sha256sum-amd64.txt lists" in problem


def test_a_bundle_refuses_what_does_not_verify(tmp_path):
    pin = artifact_set(tmp_path / "given")
    (tmp_path / "given" / FILES[1]).write_bytes(b"tampered\n")
    site = dataclasses.replace(ZA, platform=ZA.platform.model_copy(update={
        "rke2_artifacts_folder": str(tmp_path / "given"), "rke2_checksums_sha256": pin}))
    with pytest.raises(ValueError, match=FILES[1]):
        build_rke2(site, tmp_path / "bundle")
    assert not (tmp_path / "bundle" / "rke2" / "v1.33.5+rke2r1").exists()
