"""The Debian packages the hosts install, read from the roles' own apt tasks: the roles are the one source,
so the offline bundle (and the test hosts' local repository) can never lack a package a role asks for."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from sovkit.config.vendors import vendor, vendor_names

APT_MODULES = ("ansible.builtin.apt", "apt")
VENDOR_TASK_FILES = set(vendor_names())  # roles/accelerator: tasks/<vendor>.yml count for that vendor only
DRIVER_TASK_FILE = "driver"  # roles/accelerator: the GPU driver, whose names are the vendor's data
INSTALLING_STATES = (None, "present", "latest", "fixed")
NESTED = ("block", "rescue", "always")


def _tasks(entries: Iterable[dict]) -> Iterable[dict]:
    for task in entries or ():
        if not isinstance(task, dict):
            continue
        yield task
        for key in NESTED:
            yield from _tasks(task.get(key) or ())


def _installed_names(task: dict, vendor_file: bool) -> list[str]:
    for module in APT_MODULES:
        args = task.get(module)
        if not isinstance(args, dict) or args.get("state") not in INSTALLING_STATES:
            continue
        names = args.get("name") or []
        names = [names] if isinstance(names, str) else list(names)
        templated = [n for n in names if "{{" in str(n)]
        if templated and vendor_file:
            # A driver branch from the stack: resolved by apt on the site's mirror of the vendor's repository.
            return [str(n) for n in names if n not in templated]
        if templated:
            raise ValueError(f"task {task.get('name')!r} installs {templated}: install only literal package names")
        return [str(n) for n in names]
    return []


def role_apt_packages(roles_dir: Path, accelerator: str = "cpu") -> dict[str, tuple[str, ...]]:
    """Role name -> the packages its tasks install on a site of `accelerator` (sorted, without duplicates)."""
    found: dict[str, tuple[str, ...]] = {}
    for role in sorted(p for p in roles_dir.iterdir() if (p / "tasks").is_dir()):
        names: set[str] = set()
        for task_file in sorted((role / "tasks").glob("*.yml")):
            if task_file.stem in VENDOR_TASK_FILES and task_file.stem != accelerator:
                continue
            driver = task_file.stem == DRIVER_TASK_FILE
            if driver and not vendor(accelerator).driver_packages:
                continue  # a CPU site installs no driver
            for task in _tasks(yaml.safe_load(task_file.read_text(encoding="utf-8")) or []):
                names.update(_installed_names(task, driver or task_file.stem in VENDOR_TASK_FILES))
            if driver:
                # The driver's names are vendor data, rendered into the role: those Debian's archive carries.
                names.update(name for kind in vendor(accelerator).driver_packages.get("debian", {}).values()
                             for name in kind)
        if names:
            found[role.name] = tuple(sorted(names))
    return found


def host_packages(roles_dir: Path, accelerator: str = "cpu") -> tuple[str, ...]:
    """Every package any role installs: what an air-gapped host's repository must hold."""
    return tuple(sorted({name for names in role_apt_packages(roles_dir, accelerator).values() for name in names}))
