"""RKE2's air-gap artifacts in the offline bundle: always listed (what the in-country mirror must carry, and the
digest that pins them), and carried when the operator has them (the stack's rke2ArtifactsFolder on the machine
building the bundle), each verified as the rke2 role verifies it before it is copied.

    <bundle>/rke2/artifacts.yaml       the release, the mirror folder the hosts fetch from, the files, the pin
    <bundle>/rke2/<version>/           the three files, when carried (a file:// aptMirror's rke2Artifacts default)
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from sovkit.bundle.manifest import sha256_of
from sovkit.config import SiteConfig
from sovkit.config.rke2 import ARTIFACTS, CHECKSUMS, runs_rke2
from sovkit.render import rke2

LISTING = "artifacts.yaml"


def listing(site: SiteConfig) -> dict:
    """What the site's hosts fetch and what pins it."""
    artifacts = rke2.artifacts(site)
    return {"version": site.platform.rke2_version, "mirror": artifacts["url"], "files": list(ARTIFACTS),
            "checksums_sha256": artifacts["checksums_sha256"]}


def verify_folder(folder: Path, checksums_sha256: str) -> list[str]:
    """Problems with the artifacts in `folder`, each naming its file: missing, the checksum file not the pinned one,
    an artifact the checksum file does not list or whose SHA-256 differs. Empty when all three pass."""
    missing = [name for name in ARTIFACTS if not (folder / name).is_file()]
    if missing:
        return [f"{folder / name}: missing" for name in missing]
    pinned = checksums_sha256.removeprefix("sha256:")
    if sha256_of(folder / CHECKSUMS) != pinned:
        return [f"{folder / CHECKSUMS}: its SHA-256 is {sha256_of(folder / CHECKSUMS)}, not the pinned {pinned} "
                "(rke2ChecksumsSha256)"]
    text = (folder / CHECKSUMS).read_text()
    listed = {name: digest for digest, name in re.findall(r"(?m)^([0-9a-f]{64}) [ *]?(\S+)$", text)}
    problems = []
    for name in (n for n in ARTIFACTS if n != CHECKSUMS):
        if name not in listed:
            problems.append(f"{folder / name}: {CHECKSUMS} lists no SHA-256 of it")
        elif sha256_of(folder / name) != listed[name]:
            problems.append(f"{folder / name}: its SHA-256 is {sha256_of(folder / name)}, not {listed[name]} as "
                            f"{CHECKSUMS} lists")
    return problems


def build_rke2(site: SiteConfig, root: Path) -> str | None:
    """List the release's artifacts and, when the stack names a folder of them, carry them, verified. Returns where
    they came from (for the manifest), or None for a site that runs no RKE2. Raises ValueError naming each file
    that fails."""
    target = root / "rke2"
    if not runs_rke2(site):
        shutil.rmtree(target, ignore_errors=True)
        return None
    target.mkdir(parents=True, exist_ok=True)
    (target / LISTING).write_text(yaml.safe_dump(listing(site), sort_keys=True, width=120))
    folder = site.platform.rke2_artifacts_folder
    if not folder:
        return "listed only: the in-country mirror carries them"
    problems = verify_folder(Path(folder), site.platform.rke2_checksums_sha256 or "")
    if problems:
        raise ValueError("RKE2 artifacts refused: " + "; ".join(problems))
    release = target / str(site.platform.rke2_version)
    release.mkdir(exist_ok=True)
    for name in ARTIFACTS:
        if not (release / name).is_file() or sha256_of(release / name) != sha256_of(Path(folder) / name):
            shutil.copyfile(Path(folder) / name, release / name)
    return f"carried from {folder}, verified"
