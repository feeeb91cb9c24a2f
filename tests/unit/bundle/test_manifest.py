"""A bundle's manifest proves its content: any missing, added or altered file is named."""

import hashlib
import json
from pathlib import Path

import pytest

from sovkit.bundle.manifest import MANIFEST, verify, write_manifest


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "apt").mkdir()
    (tmp_path / "apt" / "Packages").write_text("Package: nginx\n")
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    (tmp_path / "models" / "tiny" / "config.json").write_text('{"layers": 2}')
    write_manifest(tmp_path, {"stack": "local"})
    return tmp_path


def test_manifest_lists_every_file_with_its_sha256(bundle: Path):
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert manifest["stack"] == "local"
    assert manifest["files"]["apt/Packages"] == {"sha256": hashlib.sha256(b"Package: nginx\n").hexdigest(),
                                                 "bytes": 15}
    assert sorted(manifest["files"]) == ["apt/Packages", "models/tiny/config.json"]


def test_an_untouched_bundle_verifies(bundle: Path):
    result = verify(bundle)
    assert result.ok and result.checked == 2
    assert result.report() == "bundle verified: 2 files match the manifest"


def test_every_difference_is_named(bundle: Path):
    (bundle / "apt" / "Packages").write_text("Package: nginx-evil\n")
    (bundle / "models" / "tiny" / "config.json").unlink()
    (bundle / "models" / "tiny" / "extra.bin").write_bytes(b"\0")
    result = verify(bundle)
    assert not result.ok
    assert (result.altered, result.missing, result.unexpected) == (
        ["apt/Packages"], ["models/tiny/config.json"], ["models/tiny/extra.bin"])
    assert "altered (sha256 differs): apt/Packages" in result.report()


def test_same_size_alteration_is_caught(bundle: Path):
    (bundle / "apt" / "Packages").write_text("Package: nginX\n")
    assert verify(bundle).altered == ["apt/Packages"]


def test_links_are_refused(bundle: Path):
    (bundle / "link").symlink_to("/etc/passwd")
    with pytest.raises(ValueError, match="a bundle holds files, not links"):
        write_manifest(bundle, {})


def test_verify_without_manifest_says_how_to_build(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="sovkit bundle STACK"):
        verify(tmp_path)
