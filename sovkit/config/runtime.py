"""The serving runtime a hosts-mode site installs: a lock per accelerator vendor, every package pinned with its
wheel's sha256, shipped as package data (sovkit/data/runtime/<vendor>.txt, written by scripts/lock-runtime.py).
The bundle downloads exactly these wheels, the vLLM role installs exactly these pins with their hashes, and
validate reads from the lock which device runtime (CUDA) the site's driver must run: all read them here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sovkit.config.site import SiteConfig
from sovkit.config.vendors import vendor

RUNTIME_LOCKS = Path(__file__).resolve().parents[1] / "data" / "runtime"
# A host runs sovkit/models/verify_weights.py from the runtime's venv before a signed model starts: what it imports
# is locked with the runtime (scripts/lock-runtime.py), at the versions the kit itself is pinned to (pyproject.toml).
WEIGHTS_VERIFIER_REQUIRES = ("model-signing", "pyOpenSSL")


def weights_verifier_pins() -> list[str]:
    """The verifier's packages at the versions installed with the kit (its pins), for the runtime lock."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in WEIGHTS_VERIFIER_REQUIRES]


def normalise(package: str) -> str:
    """A distribution name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", package).lower()


@dataclass(frozen=True)
class Lock:
    lines: tuple[str, ...]  # `name==version --hash=sha256:...`, one per package

    @classmethod
    def read(cls, path: Path) -> Lock:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        return cls(tuple(line for line in lines if line and not line.startswith("#")))

    @property
    def pins(self) -> dict[str, str]:
        """Package (as written) -> pinned version."""
        return dict(line.split()[0].split("==", 1) for line in self.lines)

    def version(self, package: str) -> str | None:
        wanted = normalise(package)
        return next((v for p, v in self.pins.items() if normalise(p) == wanted), None)


def lock_path(vendor_name: str) -> Path:
    return RUNTIME_LOCKS / f"{vendor_name}.txt"


def shipped_locks() -> list[str]:
    return sorted(p.stem for p in RUNTIME_LOCKS.glob("*.txt"))


def vendor_lock(vendor_name: str) -> Lock | None:
    path = lock_path(vendor_name)
    return Lock.read(path) if path.is_file() else None


def how_to_lock(vendor_name: str) -> str:
    """What a site does when no lock ships for its vendor (said by validate and by the bundle alike)."""
    known = vendor(vendor_name)
    if known.runtime_index:
        return (f"its wheels come from {known.runtime_index}, which sovkit cannot reach: mirror that index "
                f"in-country and write sovkit/data/runtime/{vendor_name}.txt from the mirror (scripts/lock-runtime.py "
                f"{vendor_name} -- --index-url <mirror>), or run this site in kubernetes mode")
    return (f"write sovkit/data/runtime/{vendor_name}.txt (scripts/lock-runtime.py {vendor_name}), or run this site "
            "in kubernetes mode")


def requirements(site: SiteConfig) -> list[str]:
    """The lines of the site's runtime lock, or [] when none ships for its vendor (or the site runs kubernetes)."""
    lock = vendor_lock(site.accelerator.accelerator)
    if site.platform.mode != "hosts" or lock is None:
        return []
    return list(lock.lines)


@dataclass(frozen=True)
class DeviceRuntime:
    """The device runtime a lock's wheels are built on, and what the lock says of itself."""

    name: str  # CUDA
    release: str  # major.minor, e.g. 13.0
    serving: str  # e.g. vLLM 0.32.0 on torch 2.13.0

    @property
    def major(self) -> int:
        return int(self.release.split(".")[0])


def device_runtime(vendor_name: str) -> DeviceRuntime | None:
    """The device runtime of the vendor's lock (read from the pin its data file names), or None."""
    known, lock = vendor(vendor_name), vendor_lock(vendor_name)
    if lock is None or not known.device_runtime_package:
        return None
    version = lock.version(known.device_runtime_package)
    if version is None:
        return None
    engine = next((r.split("==")[0] for r in known.runtime_requirements if r.startswith("vllm")), "vllm")
    serving = f"vLLM {lock.version(engine)}" + (f" on torch {lock.version('torch')}" if lock.version("torch") else "")
    return DeviceRuntime(known.device_runtime_name or "", ".".join(version.split(".")[:2]), serving)


def driver_branch(version: str | None) -> int | None:
    """The branch of a driver version (580.95.05 -> 580), or None when it is not a version."""
    match = re.match(r"^(\d+)(\.\d+)*$", version or "")
    return int(match.group(1)) if match else None


def newest_runtime_major(vendor_name: str, branch: int) -> int | None:
    """The newest device runtime major release a driver branch runs (NVIDIA: 535 -> CUDA 12), or None."""
    runs = [major for major, minimum in vendor(vendor_name).driver_minimum_branch.items() if minimum <= branch]
    return max(runs, default=None)
