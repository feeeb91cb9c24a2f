"""A local, flat file:// apt repository built from this machine's apt sources.

``apt-get download`` fetches the requested packages and every dependency the host image lacks;
``dpkg-scanpackages`` indexes them. Bind-mounted read-only into the hosts, it is their only package
source: the air-gapped path of a real site, where it would be the in-country mirror.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sovkit.hosts._run import log, run

MOUNT_POINT = "/srv/sovkit-apt"  # where hosts see the repository


@dataclass(frozen=True)
class AptRepo:
    path: Path
    packages: tuple[str, ...]

    def volume(self, mount_point: str = MOUNT_POINT) -> str:
        """podman --volume argument that mounts the repository read-only in a host."""
        return f"{self.path}:{mount_point}:ro"

    @staticmethod
    def source_line(mount_point: str = MOUNT_POINT) -> str:
        """The apt source line of the mounted repository (flat, so trusted: it never left this machine)."""
        return f"deb [trusted=yes] file:{mount_point} ./"


_DEP_LINE = re.compile(r"^\s*\|?(?:PreDepends|Depends): (?P<name>[^\s<>]+)")


def resolve_dependencies(packages: Iterable[str], have: set[str]) -> list[str]:
    """Every package (real, not virtual) ``packages`` need that is not in ``have``."""
    proc = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                "--no-breaks", "--no-replaces", "--no-enhances", *packages])
    wanted: set[str] = set(packages)
    for line in proc.stdout.splitlines():
        if line and not line.startswith(" "):
            wanted.add(line.strip())
        else:
            match = _DEP_LINE.match(line)
            if match:
                wanted.add(match.group("name"))
    # Virtual packages appear as "<name>"; apt-get download needs real ones, which are listed too.
    real = {p for p in wanted if not p.startswith("<")}
    real = {p.split(":", 1)[0] for p in real}
    return sorted(real - have)


def build_apt_repo(packages: Iterable[str], have: set[str], cache_dir: Path) -> AptRepo:
    """Build (or reuse) a flat repository holding ``packages`` plus dependencies missing from ``have``."""
    packages = tuple(sorted(set(packages)))
    key = hashlib.sha256("\n".join([*packages, "--", *sorted(have)]).encode()).hexdigest()[:12]
    path = cache_dir / "apt" / key
    if (path / "Packages.gz").exists():
        return AptRepo(path, packages)
    started = time.monotonic()
    partial = path.with_name(key + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    needed = resolve_dependencies(packages, have)
    log.info("apt repo: downloading %d packages", len(needed))
    _download(needed, partial)
    index = run(["dpkg-scanpackages", "--multiversion", "."], timeout=300, cwd=partial).stdout
    (partial / "Packages").write_text(index)
    with gzip.open(partial / "Packages.gz", "wt") as fh:
        fh.write(index)
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)
    log.info("apt repo of %d packages built in %.0f s: %s", len(needed), time.monotonic() - started, path)
    return AptRepo(path, packages)


def _download(names: list[str], dest: Path) -> None:
    # apt-get download writes into the working directory; chunks keep the argv short.
    for i in range(0, len(names), 200):
        run(["apt-get", "-o", "Acquire::Retries=5", "download", "-q", *names[i : i + 200]], timeout=900, cwd=dest)
