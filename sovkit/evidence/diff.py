"""`sovkit evidence diff OLD NEW`: what changed between two verify runs (two packs, or two report.json files).

Per host: controls newly failing and fixed, and drift in what the checks read (the evidence lines of the same check
that changed); per clause: a verdict that changed; per site: hosts added or removed, and hosts whose suite could no
longer run. It got worse when a control newly fails, a clause verdict drops, or a host's suite newly cannot run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sovkit.evidence.pack import REPORT, EvidenceError, parse_report
from sovkit.evidence.verify import read_pack
from sovkit.verify.verdict import CLAUSE_VERDICTS_WORST_FIRST, FAILED

FAILING = ("failed",)  # a control's status (Report.by_host_control) that counts as failing


@dataclass(frozen=True)
class StatusChange:
    host: str
    control: str
    old: str | None  # None: the control did not run on the host before (a new host, a new check)
    new: str | None


@dataclass(frozen=True)
class ClauseChange:
    clause: str
    cite: str
    old: str | None
    new: str | None

    @property
    def worse(self) -> bool:
        if self.new is None:  # the clause is no longer cited (the profile changed): nothing to judge
            return False
        if self.old is None:
            return self.new == FAILED
        rank = {v: i for i, v in enumerate(CLAUSE_VERDICTS_WORST_FIRST)}
        return rank[self.new] < rank[self.old]


@dataclass(frozen=True)
class Drift:
    host: str
    control: str
    check: str
    removed: list[str]  # evidence lines only in the old run
    added: list[str]  # evidence lines only in the new run


@dataclass
class RunDiff:
    old: str
    new: str
    newly_failing: list[StatusChange] = field(default_factory=list)
    fixed: list[StatusChange] = field(default_factory=list)
    other_status: list[StatusChange] = field(default_factory=list)  # e.g. passed -> skipped
    clauses: list[ClauseChange] = field(default_factory=list)
    site_verdict: tuple[str, str] | None = None  # (old, new) when it changed
    hosts_added: list[str] = field(default_factory=list)
    hosts_removed: list[str] = field(default_factory=list)
    hosts_broken: list[str] = field(default_factory=list)  # the suite newly could not run there
    drift: list[Drift] = field(default_factory=list)

    @property
    def worse(self) -> bool:
        return bool(self.newly_failing or self.hosts_broken or any(c.worse for c in self.clauses))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "worse": self.worse,
                "clauses": [{**asdict(c), "worse": c.worse} for c in self.clauses]}

    def text(self) -> str:
        lines = [f"{self.old} -> {self.new}"]
        if self.site_verdict:
            lines.append(f"site verdict: {self.site_verdict[0]} -> {self.site_verdict[1]}")
        lines += [f"host added: {h}" for h in self.hosts_added] + [f"host removed: {h}" for h in self.hosts_removed]
        lines += [f"host whose suite could not run: {h}" for h in self.hosts_broken]
        lines += [f"NEWLY FAILING: {c.host}: {c.control} ({c.old or 'not run'} -> failed)" for c in self.newly_failing]
        lines += [f"fixed: {c.host}: {c.control} (failed -> {c.new})" for c in self.fixed]
        lines += [f"changed: {c.host}: {c.control} ({c.old or 'not run'} -> {c.new or 'not run'})"
                  for c in self.other_status]
        lines += [f"{'WORSE' if c.worse else 'clause'}: {c.cite} ({c.clause}): {c.old or 'not cited'} -> "
                  f"{c.new or 'not cited'}" for c in self.clauses]
        for d in self.drift:
            lines.append(f"evidence drift: {d.host}: {d.control} {d.check}")
            lines += [f"  - {line}" for line in d.removed] + [f"  + {line}" for line in d.added]
        if len(lines) == 1:
            lines.append("no change in controls, clauses, hosts or evidence")
        lines.append("got worse" if self.worse else "nothing got worse")
        return "\n".join(lines)


def load_report(path: Path) -> dict[str, Any]:
    """The report.json of a pack (read from the tar.gz, not unpacked) or the file itself."""
    if path.name.endswith(".tar.gz"):
        files = read_pack(path)
        if REPORT not in files:
            raise EvidenceError(f"{path}: no {REPORT} in the pack")
        data, where = files[REPORT], f"{path}: {REPORT}"
    else:
        try:
            data, where = path.read_bytes(), str(path)
        except OSError as err:
            raise EvidenceError(f"{path}: cannot read it ({err.strerror})") from None
    return parse_report(data, where)


def diff_reports(old: dict[str, Any], new: dict[str, Any], old_name: str = "old", new_name: str = "new") -> RunDiff:
    out = RunDiff(old_name, new_name)
    old_hosts, new_hosts = _hosts(old), _hosts(new)
    out.hosts_added, out.hosts_removed = sorted(new_hosts - old_hosts), sorted(old_hosts - new_hosts)
    out.hosts_broken = sorted(set(new.get("host_errors") or {}) - set(old.get("host_errors") or {}))
    if old.get("verdict") != new.get("verdict"):
        out.site_verdict = (old.get("verdict", "unknown"), new.get("verdict", "unknown"))
    for host in sorted(new_hosts):
        before, after = old["results"].get(host, {}), new["results"].get(host, {})
        for control in sorted(set(before) | set(after)):
            was, now = before.get(control, {}).get("status"), after.get(control, {}).get("status")
            change = StatusChange(host, control, was, now)
            if now in FAILING and was not in FAILING:
                out.newly_failing.append(change)
            elif was in FAILING and now not in FAILING:
                (out.fixed if now == "passed" else out.other_status).append(change)
            elif was != now and host in old_hosts:
                out.other_status.append(change)
            out.drift += _drift(host, control, before.get(control, {}), after.get(control, {}))
    old_clauses, new_clauses = old.get("clauses") or {}, new.get("clauses") or {}
    for clause in sorted(set(old_clauses) | set(new_clauses)):
        was, now = old_clauses.get(clause, {}), new_clauses.get(clause, {})
        if was.get("verdict") != now.get("verdict"):
            out.clauses.append(ClauseChange(clause, now.get("cite") or was.get("cite", ""), was.get("verdict"),
                                            now.get("verdict")))
    return out


def _hosts(report: dict[str, Any]) -> set[str]:
    return set(report.get("hosts") or {}) | set(report["results"])


def _drift(host: str, control: str, before: dict[str, Any], after: dict[str, Any]) -> list[Drift]:
    """The checks of a control, run in both, whose evidence lines differ."""
    old_checks = {c["nodeid"]: c for c in before.get("checks", [])}
    drifts = []
    for check in after.get("checks", []):
        previous = old_checks.get(check["nodeid"])
        if previous is None:
            continue
        removed = [line for line in previous["evidence"] if line not in check["evidence"]]
        added = [line for line in check["evidence"] if line not in previous["evidence"]]
        if removed or added:
            drifts.append(Drift(host, control, check["name"], removed, added))
    return drifts
