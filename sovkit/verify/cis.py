"""CIS Debian Linux 12 coverage: the benchmark's items (sovkit/data/cis_debian12.yaml) joined with the controls that
implement them (the `cis:` lists of sovkit/data/controls.yaml).

Whether an item is implemented is read from the controls only, never from the benchmark file, so the two cannot
disagree. The benchmark file gives each Level 1 Server item nobody implements a reason: `waived` or `out_of_scope`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sovkit.verify.report import load_controls

BENCHMARK_FILE = "sovkit/data/cis_debian12.yaml"
CONTROLS_FILE = "sovkit/data/controls.yaml"
STATUSES = ("implemented", "waived", "out of scope")
NOT_ASSESSED = "not assessed"  # a Level 2 item nobody implements and nobody gave a reason for
REASON_KEYS = {"waived": "waived", "out_of_scope": "out of scope"}  # key in the file -> status


class CoverageError(ValueError):
    """The two files disagree, or an item lacks a status; the message names the file and every item at fault."""


@dataclass(frozen=True)
class ItemStatus:
    id: str
    title: str
    level: int  # 1: Level 1 Server; 2: Level 2 Server only
    status: str  # one of STATUSES, or NOT_ASSESSED (Level 2 only)
    controls: tuple[str, ...] = ()  # the controls implementing it
    reason: str = ""  # why it is waived or out of scope

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "level": self.level, "status": self.status,
                "controls": list(self.controls), "reason": self.reason}


def load_benchmark(path: Path | None = None) -> dict[str, Any]:
    """The benchmark file as data: the packaged one, or `path` (a copy under test)."""
    text = path.read_text() if path else resources.files("sovkit.data").joinpath("cis_debian12.yaml").read_text()
    return yaml.safe_load(text)


def coverage(path: Path | None = None, controls: dict[str, dict[str, Any]] | None = None) -> list[ItemStatus]:
    """Every benchmark item with its status, in the benchmark's order. Raises CoverageError naming each item that
    is both implemented and waived/out of scope, each Level 1 item with no status, and each CIS id a control cites
    that the benchmark does not have."""
    source = str(path) if path else BENCHMARK_FILE
    items = load_benchmark(path)["items"]
    controls = load_controls() if controls is None else controls
    implementers: dict[str, list[str]] = {}
    for cid, control in controls.items():
        for item_id in control.get("cis") or []:
            implementers.setdefault(str(item_id), []).append(cid)

    problems, out = [], []
    for item_id, n in Counter(str(i["id"]) for i in items).items():
        if n > 1:
            problems.append(f"item {item_id} is listed {n} times; keep one")
    for item in items:
        item_id, level = str(item["id"]), item.get("level")
        if level not in (1, 2):
            problems.append(f"item {item_id}: level is {level!r}; allowed: 1 (Level 1 Server) or 2 (Level 2 only)")
        reasons = {REASON_KEYS[k]: str(item[k]).strip() for k in REASON_KEYS if k in item}
        by = tuple(implementers.get(item_id, ()))
        if by and reasons:
            problems.append(f"item {item_id} is implemented by {', '.join(by)} ({CONTROLS_FILE}) and also "
                            f"{' and '.join(reasons)}; remove its {'/'.join(_keys(reasons))} here, or the id from "
                            "the control's cis list")
        elif len(reasons) > 1:
            problems.append(f"item {item_id} is both waived and out of scope; keep the one that is true")
        elif any(not r for r in reasons.values()):
            problems.append(f"item {item_id}: its {_keys(reasons)[0]} reason is empty; say why")
        elif not by and not reasons and level == 1:
            problems.append(f"item {item_id} (Level 1) has no status: no control in {CONTROLS_FILE} lists it, and it "
                            "has neither waived: nor out_of_scope:; add the id to the control that implements it, "
                            "or give the reason here")
        if by:
            out.append(ItemStatus(item_id, item["title"], level, "implemented", by))
        elif reasons:
            status, reason = next(iter(reasons.items()))
            out.append(ItemStatus(item_id, item["title"], level, status, reason=reason))
        else:
            out.append(ItemStatus(item_id, item["title"], level, NOT_ASSESSED))
    known = {str(i["id"]) for i in items}
    for item_id, by in sorted(implementers.items()):
        if item_id not in known:
            problems.append(f"{', '.join(by)} in {CONTROLS_FILE} cite{'s' if len(by) == 1 else ''} CIS {item_id}, "
                            "which the benchmark does not have; correct the id (CIS Debian 12 v1.1.0 numbering)")
    if problems:
        raise CoverageError(f"{source}: the CIS mapping is inconsistent:\n" + "\n".join(f"  - {p}" for p in problems))
    return out


def summary(items: list[ItemStatus]) -> dict[str, int]:
    """Counts of the Level 1 Server items by status, and their total."""
    counts = Counter(i.status for i in items if i.level == 1)
    return {"implemented": counts["implemented"], "waived": counts["waived"],
            "out_of_scope": counts["out of scope"], "total": sum(counts.values())}


def _keys(reasons: dict[str, str]) -> list[str]:
    """The file's key names of the given statuses (`out of scope` is written `out_of_scope`)."""
    return [k for k, status in REASON_KEYS.items() if status in reasons]
