"""A site's in-country Debian mirror, stood up from a flat folder of .deb files (the offline bundle's `apt/`).

The layout is the one a real Debian mirror has, so the hosts' apt sources are exactly those of the site:

    <target>/debian/pool/<component>/<letter>/<source>/<package>_<version>_<arch>.deb
    <target>/debian/dists/<suite>/{Release,InRelease,Release.gpg}
    <target>/debian/dists/<suite>/<component>/binary-<arch>/{Packages,Packages.gz,Release}
    <target>/debian-security/...          (the security suite, where a real mirror puts it)

Each package goes to the component its `Section` names (`non-free/...`, `contrib/...`, `non-free-firmware/...`,
else main); every package is in the first (main) suite, the other suites have empty indexes. Indexes are made by
Debian's `apt-ftparchive`, the Release files are signed with `gpg` by a throwaway archive key
(:func:`make_archive_key`) that the hosts trust through `Signed-By:`, as a site that re-signs Debian would.

Re-running with the same packages and key rewrites nothing: every file is compared by content before it is
written, and a stamp of the inputs makes the unchanged case return at once.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sovkit.bundle.manifest import sha256_of
from sovkit.hosts import HostsError

SUITES = ("bookworm", "bookworm-updates")
SECURITY_SUITE = "bookworm-security"
COMPONENTS = ("main", "contrib", "non-free", "non-free-firmware")
ARCHITECTURES = ("amd64",)
STAMP = ".sovkit-mirror.json"  # in the target: the inputs of the last build, for the fast no-op
ARCHIVES = {"debian": "Debian", "debian-security": "Debian-Security"}  # folder -> Release Label (Origin: Debian)
log = logging.getLogger("sovkit.rehearse")


def _run(argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> bytes:
    proc = subprocess.run(list(argv), env=env, cwd=cwd, capture_output=True, check=False, timeout=600)
    if proc.returncode != 0:
        raise HostsError(f"`{' '.join(argv)}` exited {proc.returncode}\n"
                         f"{proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


# -- the archive key -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchiveKey:
    """A throwaway OpenPGP signing key in its own GNUPGHOME under `folder`, with its public half exported."""

    folder: Path
    name: str
    fingerprint: str

    @property
    def gnupghome(self) -> Path:
        return self.folder / "gnupg"

    @property
    def public_armored(self) -> Path:
        """The public key, ASCII-armored (.asc)."""
        return self.folder / "archive-key.asc"

    @property
    def keyring(self) -> Path:
        """The public key as a binary keyring: what apt's `Signed-By:` takes."""
        return self.folder / "archive-key.gpg"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "GNUPGHOME": str(self.gnupghome), "LC_ALL": "C"}

    def gpg(self, *args: str) -> bytes:
        return _run(["gpg", "--batch", "--quiet", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", "",
                     *args], env=self._env())

    def stop_agent(self) -> None:
        """gpg starts an agent for secret-key work: stop it once done, so nothing of ours keeps running."""
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=self._env(), capture_output=True, check=False)


def make_archive_key(folder: Path, name: str) -> ArchiveKey:
    """The archive key kept in `folder` (made with gpg if `folder` holds none yet; idempotent)."""
    folder = Path(folder)
    home = folder / "gnupg"
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    probe = ArchiveKey(folder, name, "")
    try:
        fingerprint = _fingerprint_of(probe.gpg("--with-colons", "--list-secret-keys").decode(), name)
        if not fingerprint:
            probe.gpg("--quick-gen-key", name, "ed25519", "sign", "never")
            fingerprint = _fingerprint_of(probe.gpg("--with-colons", "--list-secret-keys").decode(), name)
        if not fingerprint:
            raise HostsError(f"gpg made no secret key with user id {name!r} in {home}")
        key = ArchiveKey(folder, name, fingerprint)
        _write_if_changed(key.public_armored, key.gpg("--armor", "--export", fingerprint))
        _write_if_changed(key.keyring, key.gpg("--export", fingerprint))
    finally:
        probe.stop_agent()
    return key


def _fingerprint_of(colons: str, name: str) -> str:
    """The fingerprint of the secret key whose user id is `name`, from `gpg --with-colons` output ("" if none)."""
    fpr = ""
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "sec":
            fpr = ""
        elif fields[0] == "fpr" and not fpr:
            fpr = fields[9]
        elif fields[0] == "uid" and fields[9] == name and fpr:
            return fpr
    return ""


# -- the mirror ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MirrorLayout:
    """A built mirror: serve `root` at the site's mirror URL (so `<url>/debian` and `<url>/debian-security` exist)."""

    root: Path
    key: ArchiveKey
    suites: tuple[str, ...]
    security_suite: str
    components: tuple[str, ...]
    architectures: tuple[str, ...]
    packages: dict[str, tuple[str, ...]] = field(hash=False)  # component -> "name=version" in the main suite
    changed: tuple[str, ...] = ()  # paths under root this call wrote or removed; empty when nothing changed

    @property
    def debian(self) -> Path:
        return self.root / "debian"

    @property
    def security(self) -> Path:
        return self.root / "debian-security"

    def sources(self, base_url: str, signed_by: str) -> str:
        """The deb822 apt sources of this mirror served at `base_url`, trusting the keyring at `signed_by`."""
        base = base_url.rstrip("/")
        stanzas = [(f"{base}/debian", self.suites), (f"{base}/debian-security", (self.security_suite,))]
        return "\n".join(
            f"Types: deb\nURIs: {uri}\nSuites: {' '.join(suites)}\nComponents: {' '.join(self.components)}\n"
            f"Signed-By: {signed_by}\n" for uri, suites in stanzas)


@dataclass(frozen=True)
class _Deb:
    path: Path
    package: str
    version: str
    architecture: str
    section: str
    source: str

    @property
    def component(self) -> str:
        head = self.section.split("/", 1)[0] if "/" in self.section else "main"
        return head if head in ("contrib", "non-free", "non-free-firmware") else "main"

    def pool_path(self) -> str:
        """pool/<component>/<letter>/<source>/<package>_<version without epoch>_<arch>.deb, as Debian's dak."""
        letter = self.source[:4] if self.source.startswith("lib") and len(self.source) > 3 else self.source[0]
        version = self.version.split(":", 1)[-1]
        return f"pool/{self.component}/{letter}/{self.source}/{self.package}_{version}_{self.architecture}.deb"


def _stanzas(text: str) -> list[dict[str, str]]:
    """deb822 stanzas, single-line fields only (what the pool placement needs)."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        fields = {}
        for line in block.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            out.append(fields)
    return out


def _read_debs(folder: Path) -> list[_Deb]:
    """Every .deb of the flat `folder`, with its control fields (read by apt-ftparchive in one pass)."""
    if not any(folder.glob("*.deb")):
        return []
    listing = _run(["apt-ftparchive", "packages", "."], cwd=folder).decode()
    debs = []
    for fields in _stanzas(listing):
        source = fields.get("Source", fields["Package"]).split(" ", 1)[0]  # "sl (5.02-1)" -> "sl"
        debs.append(_Deb(folder / fields["Filename"].removeprefix("./"), fields["Package"], fields["Version"],
                         fields["Architecture"], fields.get("Section", "misc"), source))
    return sorted(debs, key=lambda d: (d.package, d.version, d.architecture))


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def _place(src: Path, dest: Path) -> bool:
    """Put `src` at `dest` (a hard link where the file system allows, else a copy) unless it is there already."""
    if dest.is_file() and (dest.samefile(src) or (dest.stat().st_size == src.stat().st_size
                                                  and sha256_of(dest) == sha256_of(src))):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    tmp.replace(dest)
    return True


def _without_date(release: bytes) -> bytes:
    return b"\n".join(line for line in release.splitlines() if not line.startswith(b"Date:"))


class _Builder:
    def __init__(self, target: Path, key: ArchiveKey, components: tuple[str, ...],
                 architectures: tuple[str, ...]) -> None:
        self.target = target
        self.key = key
        self.components = components
        self.architectures = architectures
        self.expected: set[Path] = set()
        self.changed: list[str] = []

    def _note(self, path: Path, changed: bool) -> None:
        self.expected.add(path)
        if changed:
            self.changed.append(str(path.relative_to(self.target)))

    def put(self, path: Path, data: bytes) -> None:
        self._note(path, _write_if_changed(path, data))

    def place(self, src: Path, dest: Path) -> None:
        self._note(dest, _place(src, dest))

    def suite(self, archive: str, suite: str, debs: list[_Deb]) -> None:
        """The indexes of one suite (packages from the archive's pool) and its signed Release."""
        top = self.target / archive
        dists = top / "dists" / suite
        label = ARCHIVES[archive]
        top.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".staging-", dir=top) as tmp:
            staged = Path(tmp)
            for component in self.components:
                in_component = [d for d in debs if d.component == component]
                for arch in self.architectures:
                    rel = Path(component) / f"binary-{arch}"
                    index = b""
                    if in_component and (top / "pool" / component).is_dir():
                        index = _run(["apt-ftparchive", "--arch", arch, "packages", f"pool/{component}"], cwd=top)
                    (staged / rel).mkdir(parents=True)
                    (staged / rel / "Packages").write_bytes(index)
                    (staged / rel / "Packages.gz").write_bytes(gzip.compress(index, mtime=0))
                    (staged / rel / "Release").write_text(
                        f"Archive: {suite}\nOrigin: Debian\nLabel: {label}\nComponent: {component}\n"
                        f"Architecture: {arch}\n")
            release = _run([
                "apt-ftparchive",
                "-o", "APT::FTPArchive::Release::Origin=Debian",
                "-o", f"APT::FTPArchive::Release::Label={label}",
                "-o", f"APT::FTPArchive::Release::Suite={suite}",
                "-o", f"APT::FTPArchive::Release::Codename={suite}",
                "-o", f"APT::FTPArchive::Release::Architectures={' '.join(self.architectures)}",
                "-o", f"APT::FTPArchive::Release::Components={' '.join(self.components)}",
                "-o", f"APT::FTPArchive::Release::Description=In-country mirror of Debian {suite} (sovkit)",
                "release", ".",
            ], cwd=staged)
            for path in sorted(staged.rglob("*")):
                if path.is_file():
                    self.put(dists / path.relative_to(staged), path.read_bytes())
        self._release(dists, release)

    def _release(self, dists: Path, release: bytes) -> None:
        """Write Release and its signatures, unless the same Release (but for its Date) is there, signed by the key."""
        files = [dists / "Release", dists / "InRelease", dists / "Release.gpg"]
        current = files[0].read_bytes() if files[0].is_file() else b""
        if _without_date(current) == _without_date(release) and self._signed(dists):
            for path in files:
                self._note(path, False)
            return
        self.put(files[0], release)
        self.put(files[1], self.key.gpg("--local-user", self.key.fingerprint, "--digest-algo", "SHA512",
                                        "--clearsign", "--output", "-", str(files[0])))
        self.put(files[2], self.key.gpg("--local-user", self.key.fingerprint, "--digest-algo", "SHA512",
                                        "--armor", "--detach-sign", "--output", "-", str(files[0])))

    def _signed(self, dists: Path) -> bool:
        """InRelease holds exactly Release and both signatures verify with the key (gpgv, as apt checks them)."""
        if not all((dists / name).is_file() for name in ("InRelease", "Release.gpg")):
            return False
        gpgv = ["gpgv", "--quiet", "--keyring", str(self.key.keyring)]
        inline = subprocess.run([*gpgv, "--output", "-", str(dists / "InRelease")], capture_output=True, check=False)
        detached = subprocess.run([*gpgv, str(dists / "Release.gpg"), str(dists / "Release")], capture_output=True,
                                  check=False)
        return (inline.returncode == 0 and detached.returncode == 0
                and inline.stdout.rstrip(b"\n") == (dists / "Release").read_bytes().rstrip(b"\n"))

    def prune(self, *areas: Path) -> None:
        """Remove what this build did not produce under `areas` (packages gone from the bundle, old suites)."""
        for area in areas:
            if not area.is_dir():
                continue
            for path in sorted(area.rglob("*"), reverse=True):
                if path.is_file() or path.is_symlink():
                    if path not in self.expected:
                        path.unlink()
                        self.changed.append(f"removed {path.relative_to(self.target)}")
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()


def _inputs(debs_folder: Path, params: dict[str, object], key: ArchiveKey) -> str:
    """A digest of what a build depends on: the .debs (name, size, mtime), the layout parameters and the key."""
    entries = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in debs_folder.glob("*.deb"))
    text = json.dumps({"debs": entries, "params": params, "key": key.fingerprint,
                       "keyring": sha256_of(key.keyring) if key.keyring.is_file() else ""}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def build_debian_mirror(packages: Path, target: Path, key: ArchiveKey, *,
                        suites: Sequence[str] = SUITES, security_suite: str = SECURITY_SUITE,
                        components: Sequence[str] = COMPONENTS,
                        architectures: Sequence[str] = ARCHITECTURES) -> MirrorLayout:
    """Lay out and sign a Debian mirror of the .debs in the flat folder `packages` under `target`; idempotent."""
    packages, target = Path(packages), Path(target)
    suites, components, architectures = tuple(suites), tuple(components), tuple(architectures)
    if not suites:
        raise HostsError("build_debian_mirror: at least one suite is needed (the first holds the packages)")
    params = {"suites": suites, "security": security_suite, "components": components, "architectures": architectures}
    inputs = _inputs(packages, params, key)
    stamp = target / STAMP
    layout = {"root": target, "key": key, "suites": suites, "security_suite": security_suite,
              "components": components, "architectures": architectures}
    if stamp.is_file():
        recorded = json.loads(stamp.read_text())
        signed = [target / "debian" / "dists" / s / "InRelease" for s in suites]
        signed.append(target / "debian-security" / "dists" / security_suite / "InRelease")
        if recorded.get("inputs") == inputs and all(p.is_file() for p in signed):
            return MirrorLayout(**layout, packages={c: tuple(v) for c, v in recorded["packages"].items()})

    debs = _read_debs(packages)
    outside = sorted({f"{d.path.name} ({d.section})" for d in debs if d.component not in components})
    if outside:
        raise HostsError(f"{packages}: {', '.join(outside)} belong to components the mirror does not carry; "
                         f"components: {', '.join(components)}. Add the component or drop the package.")
    target.mkdir(parents=True, exist_ok=True)
    builder = _Builder(target, key, components, architectures)
    for deb in debs:
        builder.place(deb.path, target / "debian" / deb.pool_path())
    builder.prune(target / "debian" / "pool")  # the indexes list the pool: only what this build placed
    try:
        for i, suite in enumerate(suites):
            builder.suite("debian", suite, debs if i == 0 else [])
        (target / "debian-security" / "pool").mkdir(parents=True, exist_ok=True)
        builder.suite("debian-security", security_suite, [])
    finally:
        key.stop_agent()
    builder.prune(target / "debian" / "dists", target / "debian-security" / "dists")

    listed = {c: tuple(f"{d.package}={d.version}" for d in debs if d.component == c) for c in components}
    log.info("mirror %s: %d packages (%s), %d files changed", target, len(debs),
             ", ".join(f"{c} {len(v)}" for c, v in listed.items()), len(builder.changed))
    _write_if_changed(stamp, json.dumps({"inputs": inputs, "packages": listed}, indent=1).encode())
    return MirrorLayout(**layout, packages=listed, changed=tuple(builder.changed))


def build_vendor_repository(target: Path, key: ArchiveKey, origin: str, suites: Sequence[str] = ("/",),
                            components: Sequence[str] = ()) -> Path:
    """An empty repository at `target`, signed by `key`, laid out as the site's source names it: flat (apt's
    `Suites: /`: Packages and Release at the top) or with suites and components (dists/<suite>/Release and
    dists/<suite>/<component>/binary-<arch>/Packages). The stand-in for a vendor's repository the site mirrors
    in-country, whose packages are not reachable here: the hosts read it through the site's own source entry, so a
    source apt cannot read or verify fails the rehearsal. Idempotent."""
    target.mkdir(parents=True, exist_ok=True)
    builder = _Builder(target, key, tuple(components), ARCHITECTURES)
    empty = {"Packages": b"", "Packages.gz": gzip.compress(b"", mtime=0)}
    for suite in suites:
        flat = suite == "/"
        dists = target if flat else target / "dists" / suite
        indexes = empty if flat else {f"{component}/binary-{arch}/{name}": data for component in components
                                      for arch in ARCHITECTURES for name, data in empty.items()}
        fields = [] if flat else [f"Suite={suite}", f"Codename={suite}", f"Architectures={' '.join(ARCHITECTURES)}",
                                  f"Components={' '.join(components)}"]
        with tempfile.TemporaryDirectory(prefix=".staging-", dir=target) as tmp:
            for name, data in indexes.items():  # staged apart, so Release lists the indexes and not itself
                (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(tmp) / name).write_bytes(data)
                builder.put(dists / name, data)
            options = [f"Origin={origin}", f"Label={origin}", "Description=Rehearsal stand-in (no packages)", *fields]
            release = _run(["apt-ftparchive", *(arg for option in options
                                                for arg in ("-o", f"APT::FTPArchive::Release::{option}")),
                            "release", "."], cwd=Path(tmp))
        try:
            builder._release(dists, release)
        finally:
            key.stop_agent()
    return target
