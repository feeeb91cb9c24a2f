"""What the checks prove: a verdict per law clause of the site's country profile, and one for the site.

A clause is evidenced by the controls mapped to it (the `clauses` lists of sovkit/data/controls.yaml). A check
skipped because it does not apply to a host (``applicable`` false: no gateway runs there) takes nothing away; a check
skipped where it applies (a container cannot prove auditd) leaves its clauses less than evidenced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Clause verdicts, from worst to best.
FAILED, NOT_EVIDENCED, PARTLY_EVIDENCED, EVIDENCED = "failed", "not evidenced", "partly evidenced", "evidenced"
CLAUSE_VERDICTS_WORST_FIRST = (FAILED, NOT_EVIDENCED, PARTLY_EVIDENCED, EVIDENCED)
# Site verdicts.
NOT_PROVEN, NOT_COMPLIANT, NOT_FULLY_EVIDENCED, COMPLIANT = (
    "NOT PROVEN", "NOT COMPLIANT", "NOT FULLY EVIDENCED", "COMPLIANT")


class Check(Protocol):
    """A check's result as the verdicts read it (sovkit.verify.report.CheckResult)."""

    host: str
    name: str
    control: str | None
    outcome: str
    message: str
    applicable: bool


@dataclass
class ControlEvidence:
    """What one control's checks showed across the hosts: {reason: hosts} per kind of skip."""

    passed: int = 0
    failures: list[str] = field(default_factory=list)  # "host: check: first line of the failure"
    unevidenced: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    not_applicable: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, check: Check) -> None:
        if check.outcome == "passed":
            self.passed += 1
        elif check.outcome in ("failed", "error"):
            self.failures.append(f"{check.host}: {check.name} {check.outcome}: {first_line(check.message)[:200]}")
        elif check.applicable:
            self.unevidenced[check.message or "skipped without a reason"].add(check.host)
        else:
            self.not_applicable[check.message].add(check.host)

    @property
    def ran(self) -> bool:
        """Some check of it ran where it applies (a skip there counts: it tells why nothing was proven)."""
        return bool(self.passed or self.failures or self.unevidenced)


@dataclass(frozen=True)
class ClauseVerdict:
    clause: str
    cite: str
    title: str
    controls: list[str]
    verdict: str
    reasons: list[str]  # why it is not evidenced, control by control; empty when it is


@dataclass(frozen=True)
class SiteVerdict:
    verdict: str
    headline: str  # the verdict and, unless compliant, the clauses or hosts that keep it from being so


def control_evidence(results: Iterable[Check]) -> dict[str, ControlEvidence]:
    """{control id: its evidence across every host}; checks without a control are filed under "UNMAPPED"."""
    out: dict[str, ControlEvidence] = defaultdict(ControlEvidence)
    for check in results:
        out[check.control or "UNMAPPED"].add(check)
    return dict(out)


def clause_verdict(clause: str, cite: str, title: str, controls: list[str],
                   evidence: Mapping[str, ControlEvidence]) -> ClauseVerdict:
    """failed: a control failed somewhere; evidenced: every control that applies somewhere passed wherever it applies;
    partly evidenced: one passed, another was skipped where it applies or never ran; not evidenced: none passed."""
    if not controls:
        return ClauseVerdict(clause, cite, title, [], NOT_EVIDENCED, ["no control of the suite evidences it"])
    found = {cid: evidence.get(cid, ControlEvidence()) for cid in controls}
    failures = [f"{cid} failed on {line}" for cid, ev in found.items() for line in ev.failures]
    if failures:
        return ClauseVerdict(clause, cite, title, controls, FAILED, failures)
    reasons = []
    for cid, ev in found.items():
        reasons += [f"{cid} skipped on {', '.join(sorted(hosts))}: {why}" for why, hosts in ev.unevidenced.items()]
        if not ev.ran and not ev.not_applicable:
            reasons.append(f"{cid} did not run on any host")
    if not any(ev.passed for ev in found.values()):
        reasons += [f"{cid} on every host checked: {'; '.join(sorted(ev.not_applicable))}"
                    for cid, ev in found.items() if not ev.ran and ev.not_applicable]
        return ClauseVerdict(clause, cite, title, controls, NOT_EVIDENCED, reasons)
    return ClauseVerdict(clause, cite, title, controls, PARTLY_EVIDENCED if reasons else EVIDENCED, reasons)


def clause_verdicts(clauses: Mapping[str, Mapping[str, str]], catalogue: Mapping[str, Mapping[str, Any]],
                    results: Iterable[Check]) -> dict[str, ClauseVerdict]:
    """A verdict for each clause of the profile ({id: {cite, title}}), from the catalogue's controls mapped to it."""
    evidence = control_evidence(results)
    return {clause: clause_verdict(clause, text["cite"], text["title"],
                                   sorted(cid for cid, c in catalogue.items() if clause in c.get("clauses", [])),
                                   evidence)
            for clause, text in sorted(clauses.items())}


def site_verdict(verdicts: Mapping[str, ClauseVerdict], results: Iterable[Check],
                 host_errors: Mapping[str, str]) -> SiteVerdict:
    """COMPLIANT only when every clause is evidenced. A host whose suite could not run leaves the site NOT PROVEN;
    any failed check (mapped to a clause or not) makes it NOT COMPLIANT."""
    def named(verdict: str) -> str:
        return ", ".join(f"{v.clause} ({v.cite})" for v in verdicts.values() if v.verdict == verdict)

    if host_errors:
        return SiteVerdict(NOT_PROVEN, f"{NOT_PROVEN}: the suite could not run on {', '.join(sorted(host_errors))}")
    failed = [f"{r.host}: {r.name}" for r in results if r.outcome in ("failed", "error")]
    if failed:
        what = named(FAILED) or "no clause of this law"
        return SiteVerdict(NOT_COMPLIANT, f"{NOT_COMPLIANT}: failed: {what} ({len(failed)} checks failed)")
    if not verdicts:
        return SiteVerdict(NOT_FULLY_EVIDENCED, f"{NOT_FULLY_EVIDENCED}: the inventory names no clause of a law")
    short = [f"{label}: {names}" for label, names in ((PARTLY_EVIDENCED, named(PARTLY_EVIDENCED)),
                                                        (NOT_EVIDENCED, named(NOT_EVIDENCED))) if names]
    if short:
        return SiteVerdict(NOT_FULLY_EVIDENCED, f"{NOT_FULLY_EVIDENCED}: no check failed, but " + "; ".join(short))
    return SiteVerdict(COMPLIANT, f"{COMPLIANT}: every clause evidenced ({len(verdicts)} clauses)")


def first_line(text: str) -> str:
    """A message's first line that is not blank, stripped: what a summary of a check's failure or skip shows."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
