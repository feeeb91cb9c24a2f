"""`sovkit bundle STACK`: everything a site's hosts install, and nothing else, in one folder with a manifest.

    <bundle>/apt/        a flat apt repository: the packages the roles install, with every dependency a
                         minimal Debian 12 host lacks (the in-country mirror of an air-gapped site)
    <bundle>/wheels/     hosts mode: the serving runtime's wheels and requirements.txt (every package pinned)
    <bundle>/models/     models the kit makes offline (the local stack's tiny model); real weights come from
                         the in-country model store, checked against their revision by the model_store role
    <bundle>/chart/      the serving chart and the values `sovkit values` renders for the site; kubernetes mode:
                         third-party-charts.yaml, the pinned charts the in-country chart mirror must carry
    <bundle>/images/model-verifier/   kubernetes mode with a signed model: the build context of sovkit's weights
                         verifier image (recipe, lock, verifier, the lock's wheels), which the site builds offline and
                         pushes to its registry as <containerRegistry>/sovkit/model-verifier:<tag>
    <bundle>/rke2/       an RKE2 site: artifacts.yaml (the release's artifacts and the digest that pins them) and,
                         when the stack names a folder of them (rke2ArtifactsFolder), the three files, verified
    <bundle>/manifest.json   sha256 and size of every file, and what the bundle was built from

Downloads are cached per machine (~/.cache/sovkit), and files already in the bundle are kept, so a re-run
costs a manifest check. The hosts mount the bundle read-only and reach no other package source.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from sovkit.bundle.manifest import MANIFEST, write_manifest
from sovkit.bundle.rke2 import build_rke2
from sovkit.config import SiteConfig, runtime
from sovkit.config.catalogue import TINY_MODEL
from sovkit.render.cluster import third_party_charts
from sovkit.render.packages import host_packages
from sovkit.render.values import render_values
from sovkit.stacks import project_root
from sovkit.workspace import SiteWorkspace

CHART = "sovkit-serving"
THIRD_PARTY_CHARTS = "third-party-charts.yaml"
Progress = Callable[[str], None]


class BundleError(RuntimeError):
    """A bundle that cannot be built for this site; the message says why and what to do."""


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: dict
    seconds: dict[str, float]

    @property
    def bytes(self) -> int:
        return sum(f["bytes"] for f in self.manifest["files"].values())


def default_bundle_dir(site: SiteConfig) -> Path:
    return SiteWorkspace.of(site.name).bundle


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sovkit"


def runtime_lock(site: SiteConfig) -> Path | None:
    """The pinned serving runtime the site's hosts install (hosts mode), or None (kubernetes: images)."""
    if site.platform.mode != "hosts":
        return None
    vendor = site.accelerator.accelerator
    lock = runtime.lock_path(vendor)
    if not lock.is_file():
        shipped = ", ".join(runtime.shipped_locks())
        raise BundleError(
            f"{site.source}: accelerator {vendor!r} in hosts mode needs a locked serving runtime "
            f"({lock.relative_to(project_root())}); sovkit ships one for: {shipped}. For {vendor}, "
            f"{runtime.how_to_lock(vendor)}. Nothing was changed.")
    return lock


def driver_source(site: SiteConfig) -> str | None:
    """Where the site's hosts get the accelerator driver (the bundle's Debian packages hold only Debian's own)."""
    name = site.accelerator.accelerator
    if name == "cpu":
        return None
    repository = site.residency.apt_repositories.get(name)
    if repository:
        return (f"the site's mirror of the vendor's repository (aptRepositories.{name}: {repository.url}); "
                "its packages are not in this bundle")
    return "Debian 12's non-free archive, through the site's Debian mirror; its packages are not in this bundle"


def _place(source: Path, target: Path) -> bool:
    """Put `source` at `target` (a hard link where the file systems allow); False if already identical."""
    if target.exists() and target.stat().st_size == source.stat().st_size:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return True


def _sync_folder(files: list[Path], target: Path) -> int:
    """Make `target` hold exactly `files` (by name); returns how many were placed."""
    target.mkdir(parents=True, exist_ok=True)
    wanted = {f.name for f in files}
    for stale in target.iterdir():
        if stale.name not in wanted:
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return sum(_place(f, target / f.name) for f in files)


def build_apt(root: Path, progress: Progress) -> None:
    """The packages every role installs, plus what a minimal Debian 12 host (sovkit's host image) lacks."""
    from sovkit.hosts import build_apt_repo, build_rootfs  # needs root and Debian tools: imported on use

    packages = host_packages(project_root() / "roles")
    progress(f"apt: {len(packages)} packages the roles install, with their dependencies")
    image = build_rootfs()
    repo = build_apt_repo(packages, image.installed_packages(), cache_dir() / "hosts")
    _sync_folder(sorted(p for p in repo.path.iterdir() if p.is_file()), root / "apt")


def cached_wheels(lock: Path, progress: Progress, what: str = "") -> list[Path]:
    """The wheels a lock pins, downloaded once per lock (by its digest) into the cache, exactly the pinned files."""
    key = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    lines = runtime.Lock.read(lock).lines
    name = lock.parent.name if lock.name == "requirements.txt" else lock.stem
    cached = cache_dir() / "wheels" / f"{name}-{key}"
    if not (cached / ".complete").exists():
        progress(f"wheels: downloading {what or f'the {name} serving runtime'} ({len(lines)} wheels of {lock.name}, "
                 "once)")
        partial = cached.with_name(cached.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        download = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                                   "--only-binary=:all:", "--dest", str(partial), "--requirement", str(lock)],
                                  capture_output=True, text=True, check=False)
        if download.returncode != 0:
            raise BundleError(f"wheels: pip could not download every pin of {lock} (exit {download.returncode}); "
                              f"the files already fetched stay in {partial} for the next try.\n"
                              f"{download.stderr.strip()[-2000:]}")
        shutil.rmtree(cached, ignore_errors=True)
        partial.rename(cached)
        (cached / ".complete").touch()
    return sorted(cached.glob("*.whl"))


def build_wheels(root: Path, lock: Path, progress: Progress) -> None:
    """The runtime's wheels, exactly the pinned files, and the lock as requirements.txt."""
    _sync_folder(cached_wheels(lock, progress), root / "wheels")
    (root / "wheels" / "requirements.txt").write_text("\n".join(runtime.Lock.read(lock).lines) + "\n")


def verifier_image_needed(site: SiteConfig) -> bool:
    """A kubernetes site with a signed model runs sovkit's weights verifier image (the chart's verify-model)."""
    return site.platform.mode == "kubernetes" and any(s.signature is not None for s in site.serving.models.values())


def build_verifier_image(site: SiteConfig, root: Path, progress: Progress) -> str | None:
    """The weights verifier image's build context in images/model-verifier (or nothing, and that folder removed,
    when the site runs no verifier); returns the reference the site builds and pushes, as the chart pulls it."""
    from sovkit.models import verifier_image

    target = root / "images" / "model-verifier"
    if not verifier_image_needed(site):
        shutil.rmtree(root / "images", ignore_errors=True)
        return None
    wheels = cached_wheels(verifier_image.LOCK, progress, "the weights verifier image")
    verifier_image.write_context(target, wheels)
    reference = f"{site.residency.container_registry.rstrip('/')}/{verifier_image.REPOSITORY}:" \
                f"{verifier_image.image_tag()}"
    progress(f"images: build context of {reference} in {target.relative_to(root)} (build it and push it: see "
             "the Containerfile)")
    return reference


def build_models(site: SiteConfig, root: Path, progress: Progress) -> list[str]:
    """Models the kit makes offline, checked against the revision the stack pins; returns their names."""
    from sovkit.serving import tinymodel

    made = []
    for served, spec in site.serving.models.items():
        if spec.catalogue != TINY_MODEL:
            continue
        target = root / "models" / served
        revision = tinymodel.build(target)
        if spec.revision and spec.revision != revision:
            raise BundleError(f"{site.source}: models.{served}.revision is {spec.revision}, but the model the kit "
                              f"makes is {revision}. Set that revision in the stack file. Nothing was installed.")
        made.append(served)
    made += build_evaluation_sets(site, root)
    if made:
        progress(f"models: {', '.join(made)} made offline")
    return made


def build_evaluation_sets(site: SiteConfig, root: Path) -> list[str]:
    """The evaluation sets the kit makes offline (sovkit.serving.evalsets) that the stack's gates name, beside the
    models in the bundle's store, each checked against the digest the stack pins; returns their names."""
    from sovkit.serving import evalsets

    named = {name: spec for model in site.serving.models.values() if model.evaluation
             for name, spec in model.evaluation.sets.items() if name in evalsets.sets()}
    if not named:
        return []
    made = evalsets.build(root / "models" / evalsets.FOLDER)
    for name, spec in sorted(named.items()):
        if spec.digest != made[name]:
            raise BundleError(f"{site.source}: the evaluation set {name} is {spec.digest} in the stack, but the set "
                              f"the kit makes is {made[name]}. Set that digest in the stack file. Nothing was "
                              "installed.")
    return [f"{evalsets.FOLDER}/{name}" for name in sorted(named)]


def build_chart(site: SiteConfig, root: Path) -> None:
    """The chart and the site's values. (Hosts mode's Prometheus loads the chart's own alert rules, which the
    converge pipeline renders for the play: both modes alert alike from one source.)"""
    source = project_root() / "charts" / CHART
    target = root / "chart" / CHART
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    values = render_values(site)
    (root / "chart" / f"{site.name}-values.yaml").write_text(yaml.safe_dump(values, sort_keys=True, width=120))
    if site.platform.mode == "kubernetes":  # what the in-country chart mirror must carry (not fetched here)
        (root / "chart" / THIRD_PARTY_CHARTS).write_text(yaml.safe_dump(third_party_charts_listing(site, values)))


def third_party_charts_listing(site: SiteConfig, values: dict) -> dict:
    """The pinned charts the site's cluster installs from oci://<containerRegistry>/charts, for its operators to
    mirror there (no public chart repository is reachable from the bundle's builder or the site)."""
    registry = site.residency.container_registry.rstrip("/")
    return {"mirror": f"oci://{registry}/charts",
            "charts": [{"chart": c.chart, "version": c.version, "namespace": c.namespace}
                       for c in third_party_charts(site, values)]}


def build_bundle(site: SiteConfig, root: Path | None = None, progress: Progress = lambda _: None) -> Bundle:
    """Build (or bring up to date) the site's bundle and write its manifest."""
    lock = runtime_lock(site)  # refuse an impossible bundle before downloading anything
    root = root or default_bundle_dir(site)
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).unlink(missing_ok=True)  # a bundle being rebuilt is never vouched for half-way
    seconds: dict[str, float] = {}

    def phase(name: str, step: Callable[[], object]) -> None:
        started = time.monotonic()
        step()
        seconds[name] = round(time.monotonic() - started, 1)

    phase("apt", lambda: build_apt(root, progress))
    if lock:
        phase("wheels", lambda: build_wheels(root, lock, progress))
    else:
        shutil.rmtree(root / "wheels", ignore_errors=True)
    made: list[str] = []
    phase("models", lambda: made.extend(build_models(site, root, progress)))
    phase("chart", lambda: build_chart(site, root))
    verifier: list[str | None] = []
    phase("images", lambda: verifier.append(build_verifier_image(site, root, progress)))
    carried: list[str | None] = []
    try:
        phase("rke2", lambda: carried.append(build_rke2(site, root)))
    except ValueError as err:
        raise BundleError(f"{site.source}: {err}; allowed: the release's files as rke2ChecksumsSha256 pins them. "
                          "The manifest was not written.") from None
    started = time.monotonic()
    manifest = write_manifest(root, {
        "site": site.name, "country": site.site.country, "mode": site.platform.mode,
        "accelerator": site.accelerator.accelerator,
        "runtime_lock": lock.name if lock else None,
        "driver": driver_source(site),
        "models_made_offline": made,
        "models_from_store": sorted(set(site.serving.models) - set(made)),
        "rke2_artifacts": carried[0] if carried else None,
        "verifier_image": verifier[0],  # to build from images/model-verifier and push before `pulumi up`
    })
    seconds["manifest"] = round(time.monotonic() - started, 1)
    return Bundle(root, manifest, seconds)
