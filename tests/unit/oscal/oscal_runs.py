"""Verify runs as the runner reports them, shaped like the shipped `local` stack's: two hosts, every shipped control
checked on each (two checks per control), South Africa's clauses."""

from __future__ import annotations

from sovkit.config.profiles import load_profile
from sovkit.verify.report import CheckResult, Report, load_controls

HOSTS = ("serving-1", "monitor-1")
PROFILE = "za"


def check(host: str, control: str, n: int, outcome: str = "passed", message: str = "",
          applicable: bool = True) -> CheckResult:
    name = f"test_{control.lower().replace('-', '_')}[{n}]"
    return CheckResult(host=host, nodeid=f"test_x.py::{name}", name=name, control=control, outcome=outcome,
                       evidence=[f"{control} looked at item {n}"], message=message, applicable=applicable)


def every_check_passed() -> list[CheckResult]:
    return [check(h, cid, n) for h in HOSTS for cid in load_controls() for n in (1, 2)]


def changed(results: list[CheckResult], control: str, host: str, **change: object) -> list[CheckResult]:
    """The results with the checks of that control on that host given another outcome, message or applicability."""
    return [CheckResult(**{**vars(r), **change}) if (r.control, r.host) == (control, host) else r for r in results]


def run(results: list[CheckResult], started: str = "2026-01-05T10:00:00+00:00") -> Report:
    clauses = {cid: {"cite": c.cite, "title": c.title} for cid, c in load_profile(PROFILE).clauses.items()}
    return Report(site="local", profile=PROFILE, law="POPIA", clauses=clauses, results=results, started=started,
                  duration_s=42.4, kit_version="0.1.0", kit_commit="abc123",
                  hosts={h: f"podman://{h}" for h in HOSTS})
