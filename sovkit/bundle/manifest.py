"""The bundle manifest: the sha256 and size of every file of an offline bundle, so a site can prove that
what it installs is exactly what was assembled, and `sovkit bundle --verify` can say what differs."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_files(root: Path) -> list[Path]:
    """Every regular file under root but the manifest, sorted by relative path; links are refused."""
    files = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_symlink():
                raise ValueError(f"{path}: a bundle holds files, not links (a link could point outside it)")
            if path.relative_to(root).as_posix() != MANIFEST:
                files.append(path)
    return files


def write_manifest(root: Path, facts: dict[str, object]) -> dict:
    """Hash every file and write manifest.json (deterministic: sorted keys, no timestamps of files)."""
    manifest = {
        **facts,
        "files": {p.relative_to(root).as_posix(): {"sha256": sha256_of(p), "bytes": p.stat().st_size}
                  for p in bundle_files(root)},
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


@dataclass(frozen=True)
class Verification:
    missing: list[str]
    unexpected: list[str]
    altered: list[str]
    checked: int

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.altered)

    def report(self) -> str:
        if self.ok:
            return f"bundle verified: {self.checked} files match the manifest"
        lines = [f"bundle does NOT match its manifest ({self.checked} files checked):"]
        for label, paths in (("missing", self.missing), ("not in the manifest", self.unexpected),
                             ("altered (sha256 differs)", self.altered)):
            lines += [f"  {label}: {p}" for p in paths]
        return "\n".join(lines)


def verify(root: Path) -> Verification:
    """Compare the files under root with its manifest."""
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: no manifest; build the bundle with `sovkit bundle STACK` first")
    expected: dict[str, dict] = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    present = {p.relative_to(root).as_posix(): p for p in bundle_files(root)}
    missing = sorted(set(expected) - set(present))
    unexpected = sorted(set(present) - set(expected))
    altered = sorted(name for name in set(expected) & set(present)
                     if present[name].stat().st_size != expected[name]["bytes"]
                     or sha256_of(present[name]) != expected[name]["sha256"])
    return Verification(missing, unexpected, altered, len(present))
