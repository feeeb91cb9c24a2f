"""build_debian_mirror: the layout of a real Debian mirror, packages sorted into components, signed, idempotent.

Fast: the .debs are tiny ones made here with dpkg-deb, the key is a throwaway ed25519 key; no network, no hosts.
"""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest

from sovkit.hosts import HostsError
from sovkit.rehearse.mirror import (
    ArchiveKey,
    MirrorLayout,
    build_debian_mirror,
    build_vendor_repository,
    make_archive_key,
)

COMPONENTS = ("main", "contrib", "non-free", "non-free-firmware")
# package, version, architecture, section, source field (or None)
DEBS = [
    ("tool", "1.0-1", "amd64", "utils", None),
    ("libfoo1", "2.3-4", "amd64", "libs", "libfoo"),
    ("firmware-bar", "1:2.0-1", "all", "non-free-firmware/kernel", "bar-firmware"),
    ("nftool", "0.9-2", "amd64", "non-free/utils", None),
    ("cthing", "1.0-1+b1", "amd64", "contrib/misc", "cthing (1.0-1)"),
]
EXPECTED_POOL = {
    "pool/main/t/tool/tool_1.0-1_amd64.deb",
    "pool/main/libf/libfoo/libfoo1_2.3-4_amd64.deb",
    "pool/non-free-firmware/b/bar-firmware/firmware-bar_2.0-1_all.deb",
    "pool/non-free/n/nftool/nftool_0.9-2_amd64.deb",
    "pool/contrib/c/cthing/cthing_1.0-1+b1_amd64.deb",
}


def make_deb(folder: Path, package: str, version: str, arch: str, section: str, source: str | None) -> Path:
    root = folder / f"build-{package}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr" / "share" / "doc" / package).mkdir(parents=True)
    (root / "usr" / "share" / "doc" / package / "README").write_text(f"{package} {version}\n")
    control = (f"Package: {package}\nVersion: {version}\nArchitecture: {arch}\nSection: {section}\n"
               f"Priority: optional\nMaintainer: Test <test@example.org>\nDescription: test package {package}\n")
    if source:
        control += f"Source: {source}\n"
    (root / "DEBIAN" / "control").write_text(control)
    # apt-get download names files this way, the epoch's ':' escaped
    out = folder / f"{package}_{version.replace(':', '%3a')}_{arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> ArchiveKey:
    return make_archive_key(tmp_path_factory.mktemp("key"), "svc-test archive key (sovkit test)")


@pytest.fixture
def debs(tmp_path: Path) -> Path:
    folder = tmp_path / "bundle-apt"
    folder.mkdir()
    for spec in DEBS:
        make_deb(folder, *spec)
    for build in folder.glob("build-*"):
        subprocess.run(["rm", "-rf", str(build)], check=True)
    return folder


def packages_index(mirror: Path, suite: str, component: str, archive: str = "debian") -> str:
    """The Packages index of a component, checking that Packages.gz holds the same text."""
    folder = mirror / archive / "dists" / suite / component / "binary-amd64"
    text = (folder / "Packages").read_text()
    assert gzip.decompress((folder / "Packages.gz").read_bytes()).decode() == text
    return text


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root with its inode and mtime: what a rewrite would change."""
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_layout_and_components(debs: Path, tmp_path: Path, key: ArchiveKey) -> None:
    """Each package lands in the pool of the component its Section names, indexed in the main suite only."""
    layout = build_debian_mirror(debs, tmp_path / "mirror", key)
    mirror = layout.root
    pool = {str(p.relative_to(mirror / "debian")) for p in (mirror / "debian" / "pool").rglob("*.deb")}
    assert pool == EXPECTED_POOL
    assert layout.packages == {
        "main": ("libfoo1=2.3-4", "tool=1.0-1"), "contrib": ("cthing=1.0-1+b1",), "non-free": ("nftool=0.9-2",),
        "non-free-firmware": ("firmware-bar=1:2.0-1",)}

    for component in COMPONENTS:
        index = packages_index(mirror, "bookworm", component)
        filenames = {line.split(": ", 1)[1] for line in index.splitlines() if line.startswith("Filename: ")}
        assert filenames == {p for p in EXPECTED_POOL if p.startswith(f"pool/{component}/")}
        for suite in ("bookworm-updates",):
            assert packages_index(mirror, suite, component) == ""
        assert packages_index(mirror, "bookworm-security", component, "debian-security") == ""
    assert (mirror / "debian-security" / "pool").is_dir()


@pytest.mark.parametrize(("archive", "suite", "label"), [
    ("debian", "bookworm", "Debian"), ("debian", "bookworm-updates", "Debian"),
    ("debian-security", "bookworm-security", "Debian-Security"),
])
def test_release_signed(debs: Path, tmp_path: Path, key: ArchiveKey, archive: str, suite: str, label: str) -> None:
    """Release names the suite as Debian's does (unattended-upgrades matches origin/label/codename), lists every
    index with its SHA256, and InRelease/Release.gpg verify with the archive keyring and with no other key."""
    layout = build_debian_mirror(debs, tmp_path / "mirror", key)
    dists = layout.root / archive / "dists" / suite
    fields = dict(line.split(": ", 1) for line in (dists / "Release").read_text().splitlines()
                  if ": " in line and not line.startswith(" "))
    assert fields["Origin"] == "Debian"
    assert fields["Label"] == label
    assert fields["Suite"] == fields["Codename"] == suite
    assert fields["Components"] == " ".join(COMPONENTS)
    assert fields["Architectures"] == "amd64"
    release = (dists / "Release").read_text()
    for component in COMPONENTS:
        assert f" {component}/binary-amd64/Packages.gz\n" in release.split("SHA256:", 1)[1]

    gpgv = ["gpgv", "--keyring", str(key.keyring)]
    assert subprocess.run([*gpgv, str(dists / "InRelease")], capture_output=True).returncode == 0
    assert subprocess.run([*gpgv, str(dists / "Release.gpg"), str(dists / "Release")],
                          capture_output=True).returncode == 0
    other = make_archive_key(tmp_path / "other-key", "someone else")
    assert subprocess.run(["gpgv", "--keyring", str(other.keyring), str(dists / "InRelease")],
                          capture_output=True).returncode != 0


def test_idempotent(debs: Path, tmp_path: Path, key: ArchiveKey) -> None:
    """The same packages and key rewrite nothing: at once through the stamp, and by digest without it."""
    first = build_debian_mirror(debs, tmp_path / "mirror", key)
    assert first.changed
    before = tree(first.root)
    again = build_debian_mirror(debs, tmp_path / "mirror", key)
    assert again.changed == ()
    assert again.packages == first.packages
    assert tree(first.root) == before
    (first.root / ".sovkit-mirror.json").unlink()  # no stamp: every file is compared by content
    digest_checked = build_debian_mirror(debs, tmp_path / "mirror", key)
    assert digest_checked.changed == ()
    after = tree(first.root)
    after.pop(".sovkit-mirror.json")
    before.pop(".sovkit-mirror.json")
    assert after == before


def test_removed_package_leaves_pool_and_index(debs: Path, tmp_path: Path, key: ArchiveKey) -> None:
    build_debian_mirror(debs, tmp_path / "mirror", key)
    next(debs.glob("nftool_*.deb")).unlink()
    layout: MirrorLayout = build_debian_mirror(debs, tmp_path / "mirror", key)
    assert "removed debian/pool/non-free/n/nftool/nftool_0.9-2_amd64.deb" in layout.changed
    assert "debian/dists/bookworm/non-free/binary-amd64/Packages" in layout.changed
    assert "debian/dists/bookworm/InRelease" in layout.changed
    assert "debian/dists/bookworm-updates/InRelease" not in layout.changed  # unchanged suites keep their files
    assert packages_index(layout.root, "bookworm", "non-free") == ""
    assert not (layout.root / "debian" / "pool" / "non-free").exists()


def test_component_not_carried(debs: Path, tmp_path: Path, key: ArchiveKey) -> None:
    with pytest.raises(HostsError, match=r"firmware-bar_1%3a2.0-1_all.deb \(non-free-firmware/kernel\)"):
        build_debian_mirror(debs, tmp_path / "mirror", key, components=("main", "contrib", "non-free"))


def test_archive_key_kept(tmp_path: Path) -> None:
    """A second call finds the key it made: the mirror's signatures stay valid across rehearsals."""
    first = make_archive_key(tmp_path / "k", "site archive key")
    second = make_archive_key(tmp_path / "k", "site archive key")
    assert first == second
    assert first.public_armored.read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert first.keyring.read_bytes()[:1] != b"-"  # binary, as Signed-By wants


def test_a_flat_vendor_repository_stand_in_is_empty_and_signed_by_the_key(tmp_path: Path,
                                                                                      key: ArchiveKey) -> None:
    """apt reads `Suites: /` sources at <url>/InRelease and <url>/Packages: both are there, the index is empty,
    Release lists it, and the signature verifies with the archive key alone. A second build rewrites nothing."""
    repository = build_vendor_repository(tmp_path / "nvidia", key, "nvidia")
    assert (repository / "Packages").read_bytes() == b"" == gzip.decompress((repository / "Packages.gz").read_bytes())
    release = (repository / "Release").read_text()
    assert "Origin: nvidia" in release and " Packages.gz\n" in release.split("SHA256:", 1)[1]
    assert " Release" not in release.split("SHA256:", 1)[1]  # it does not list itself
    assert subprocess.run(["gpgv", "--keyring", str(key.keyring), str(repository / "InRelease")],
                          capture_output=True).returncode == 0
    other = make_archive_key(tmp_path / "other-key", "someone else")
    assert subprocess.run(["gpgv", "--keyring", str(other.keyring), str(repository / "InRelease")],
                          capture_output=True).returncode != 0
    before = tree(repository)
    build_vendor_repository(repository, key, "nvidia")
    assert tree(repository) == before


def test_a_vendor_repository_with_suites_is_stood_in_with_the_same_suites_and_components(tmp_path: Path,
                                                                                         key: ArchiveKey) -> None:
    """AMD's amdgpu repository is read as `Suites: jammy`, `Components: main`: apt fetches dists/jammy/InRelease
    and dists/jammy/main/binary-amd64/Packages, so the stand-in has exactly those, with Release naming the suite and
    the component, signed by the key. A second build rewrites nothing."""
    repository = build_vendor_repository(tmp_path / "amd", key, "amd", ["jammy"], ["main"])
    index = repository / "dists" / "jammy" / "main" / "binary-amd64"
    assert (index / "Packages").read_bytes() == b"" == gzip.decompress((index / "Packages.gz").read_bytes())
    release = (repository / "dists" / "jammy" / "Release").read_text()
    assert {"Origin: amd", "Suite: jammy", "Codename: jammy", "Components: main", "Architectures: amd64"} <= set(
        release.splitlines())
    assert " main/binary-amd64/Packages.gz\n" in release.split("SHA256:", 1)[1]
    assert not (repository / "Packages").exists() and not (repository / "InRelease").exists()
    assert subprocess.run(["gpgv", "--keyring", str(key.keyring), str(repository / "dists" / "jammy" / "InRelease")],
                          capture_output=True).returncode == 0
    before = tree(repository)
    build_vendor_repository(repository, key, "amd", ["jammy"], ["main"])
    assert tree(repository) == before
