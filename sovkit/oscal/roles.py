"""Where the roles implement each control: the tasks named or tagged with its id (roles/<role>/tasks/*.yml)."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_CONTROL_ID = re.compile(r"^(SOV-[A-Z]+-\d{3}) \|")


@dataclass(frozen=True)
class RoleTask:
    role: str
    file: str  # relative to the roles folder: os_baseline/tasks/ssh.yml
    name: str


def control_tasks(roles_dir: Path) -> dict[str, list[RoleTask]]:
    """{control id: the tasks implementing it}: a task whose name starts with "<id> |" or whose tags carry the id."""
    if not roles_dir.is_dir():
        raise FileNotFoundError(f"no roles folder at {roles_dir}: run from the kit's checkout (the folder holding "
                                f"Pulumi.yaml and roles/)")
    found: dict[str, list[RoleTask]] = defaultdict(list)
    for path in sorted(roles_dir.glob("*/tasks/*.yml")):
        for task in _tasks(yaml.safe_load(path.read_text(encoding="utf-8")) or []):
            name = str(task.get("name", ""))
            tags = task.get("tags") or []
            ids = {m.group(1)} if (m := _CONTROL_ID.match(name)) else set()
            ids |= {t for t in (tags if isinstance(tags, list) else [tags]) if str(t).startswith("SOV-")}
            for cid in sorted(ids):
                found[cid].append(RoleTask(path.parts[-3], str(path.relative_to(roles_dir)), name))
    return dict(found)


def _tasks(items: list[Any]) -> list[dict[str, Any]]:
    """Every task of a task file, those inside block/rescue/always included."""
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        out.append(item)
        for key in ("block", "rescue", "always"):
            out += _tasks(item.get(key) or [])
    return out
