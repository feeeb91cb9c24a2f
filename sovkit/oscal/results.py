"""OSCAL assessment results of one `sovkit verify` run: an observation per check (its control, host, outcome,
evidence, skip reason and whether it applies there), a finding per law clause carrying the clause's verdict
(sovkit.verify.verdict), the run's start and end, and the hosts as its subjects."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from trestle.oscal.assessment_results import AssessmentResults, ImportAp, LocalDefinitions1, Result
from trestle.oscal.common import (
    ControlSelections,
    Finding,
    FindingTarget,
    InventoryItem,
    Link,
    ObjectiveStatus,
    Observation,
    Property,
    RelatedObservation,
    RelevantEvidence,
    ReviewedControls,
    SelectControlById,
    SubjectReference,
)

from sovkit.oscal.catalogues import statement_id
from sovkit.oscal.common import (
    COMPONENT_DEFINITION,
    CONTROLS_CATALOGUE,
    clauses_catalogue_file,
    metadata,
    prop,
    stable_uuid,
)
from sovkit.verify.report import CheckResult, Report
from sovkit.verify.verdict import EVIDENCED, FAILED, ClauseVerdict, first_line

# The run's plan is the compliance suite run against the inventory it wrote next to its reports (runner.py).
RUN_PLAN = "../inventory.yml"
UNMAPPED = "UNMAPPED"  # the report's name for checks without a control (report.by_host_control)


def run_times(report: Report) -> tuple[dt.datetime, dt.datetime]:
    started = dt.datetime.fromisoformat(report.started)
    if started.tzinfo is None:
        raise ValueError(f"the report's start {report.started!r} has no time zone; the runner writes UTC")
    return started, started + dt.timedelta(seconds=round(report.duration_s))


def assessment_results(report: Report) -> AssessmentResults:
    """Its UUIDs come from the site and the run's start: the same run gives the same document."""
    if not report.profile:
        raise ValueError(f"the report of {report.site} names no country profile: its findings need the profile's "
                         f"clause catalogue")
    started, ended = run_times(report)
    run = (report.site, report.started)
    hosts = sorted(set(report.hosts) | {r.host for r in report.results} | set(report.host_errors))
    items = {h: InventoryItem(uuid=stable_uuid(*run, "host", h), description=f"{h}, reached at "
                              f"{report.hosts.get(h, 'an address the report does not record')}",
                              props=[Property(name="asset-id", value=h)]) for h in hosts}
    observations = [_observation(r, items[r.host], run, ended) for r in report.results]
    observations += [_unrun_host(host, error, items[host], run, ended)
                     for host, error in sorted(report.host_errors.items())]
    by_control: dict[str, list[str]] = defaultdict(list)
    for r, obs in zip(report.results, observations, strict=False):
        by_control[r.control or UNMAPPED].append(obs.uuid)
    verdict = report.verdict()
    clauses_file = clauses_catalogue_file(report.profile)
    checked = sorted({r.control for r in report.results if r.control}) or sorted(report.controls)
    result = Result(
        uuid=stable_uuid(*run, "result"), title=f"sovkit verify {report.site}", description=verdict.headline,
        start=started, end=ended,
        props=[prop("site-verdict", verdict.verdict), prop("site", report.site), prop("profile", report.profile),
               prop("kit-commit", report.kit_commit)],
        links=[Link(href=CONTROLS_CATALOGUE, rel="reference", text="the kit's controls"),
               Link(href=clauses_file, rel="reference", text=f"{report.law}: clauses"),
               Link(href=COMPONENT_DEFINITION, rel="reference", text="how the kit implements them")],
        local_definitions=LocalDefinitions1(inventory_items=list(items.values())),
        reviewed_controls=ReviewedControls(
            description="The kit's controls the compliance suite checked (sovkit/compliance).",
            control_selections=[ControlSelections(include_controls=[SelectControlById(control_id=c)
                                                                     for c in checked])]),
        observations=observations or None,
        findings=[_finding(v, by_control, clauses_file, run) for v in report.by_clause().values()] or None)
    return AssessmentResults(
        uuid=stable_uuid(*run, "assessment-results"),
        metadata=metadata(f"sovkit verify {report.site}: {verdict.verdict}", report.kit_version, ended),
        import_ap=ImportAp(href=RUN_PLAN, remarks="sovkit writes no OSCAL assessment plan: the plan of this run is "
                                                  "the compliance suite run against this inventory's hosts."),
        results=[result])


def _observation(check: CheckResult, host: InventoryItem, run: tuple[str, str], collected: dt.datetime) -> Observation:
    props = [prop("control", check.control or UNMAPPED), prop("check", check.nodeid),
             prop("outcome", check.outcome), prop("applicable", str(check.applicable).lower())]
    if check.outcome == "skipped" and first_line(check.message):
        props.append(prop("skip-reason", first_line(check.message)))
    return Observation(
        uuid=stable_uuid(*run, "observation", check.host, check.nodeid),
        title=f"{check.control or UNMAPPED} on {check.host}: {check.name}",
        description=f"{check.name} {check.outcome} on {check.host}" + (f": {check.message}" if check.message else ""),
        props=props, methods=["TEST"],
        subjects=[SubjectReference(subject_uuid=host.uuid, type="inventory-item", title=check.host)],
        relevant_evidence=[RelevantEvidence(description=line) for line in check.evidence if line.strip()] or None,
        collected=collected)


def _unrun_host(host: str, error: str, item: InventoryItem, run: tuple[str, str],
                collected: dt.datetime) -> Observation:
    return Observation(
        uuid=stable_uuid(*run, "observation", host, "run"), title=f"the suite could not run on {host}",
        description=error[-1500:] or "no output", props=[prop("outcome", "could-not-run")], methods=["TEST"],
        subjects=[SubjectReference(subject_uuid=item.uuid, type="inventory-item", title=host)], collected=collected)


def _finding(verdict: ClauseVerdict, by_control: dict[str, list[str]], clauses_file: str,
             run: tuple[str, str]) -> Finding:
    """Satisfied only when the clause is evidenced; failed, partly or not evidenced are not satisfied."""
    satisfied = verdict.verdict == EVIDENCED
    reason = "pass" if satisfied else "fail" if verdict.verdict == FAILED else "other"
    related = [RelatedObservation(observation_uuid=u) for cid in verdict.controls for u in by_control.get(cid, [])]
    return Finding(
        uuid=stable_uuid(*run, "finding", verdict.clause), title=f"{verdict.cite} ({verdict.title}): {verdict.verdict}",
        description="\n".join(verdict.reasons) or "Every control evidencing it passed wherever it applies.",
        props=[prop("clause-verdict", verdict.verdict), *(prop("evidenced-by", c) for c in verdict.controls)],
        links=[Link(href=f"{clauses_file}#{verdict.clause}", rel="related", text=verdict.cite)],
        target=FindingTarget(type="statement-id", target_id=statement_id(verdict.clause), title=verdict.cite,
                             status=ObjectiveStatus(state="satisfied" if satisfied else "not-satisfied",
                                                    reason=reason)),
        related_observations=related or None)
