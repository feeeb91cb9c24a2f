"""The serving runtime a hosts-mode site installs: a pinned, hashed-by-pin lock per accelerator vendor, shipped as
package data (sovkit/data/runtime/<vendor>.txt). The bundle downloads exactly these wheels and the vLLM role
installs exactly these pins: both read them here."""

from __future__ import annotations

from pathlib import Path

from sovkit.config import SiteConfig

RUNTIME_LOCKS = Path(__file__).resolve().parents[1] / "data" / "runtime"


def lock_path(vendor: str) -> Path:
    return RUNTIME_LOCKS / f"{vendor}.txt"


def shipped_locks() -> list[str]:
    return sorted(p.stem for p in RUNTIME_LOCKS.glob("*.txt"))


def requirements(site: SiteConfig) -> list[str]:
    """The pins of the site's runtime lock (`name==version` lines), or [] when none ships for its vendor."""
    lock = lock_path(site.accelerator.accelerator)
    if site.platform.mode != "hosts" or not lock.is_file():
        return []
    return [line.strip() for line in lock.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
