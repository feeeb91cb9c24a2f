"""Assessment results of a verify run: an observation per check, a finding per clause with the clause's verdict,
stable UUIDs, and the oscal/ folder `sovkit verify` writes."""

from __future__ import annotations

import json

from oscal_runs import HOSTS, PROFILE, changed, check, every_check_passed, run
from rich.console import Console
from trestle.oscal.assessment_results import AssessmentResults

from sovkit.oscal.common import (
    ASSESSMENT_RESULTS,
    COMPONENT_DEFINITION,
    CONTROLS_CATALOGUE,
    NAMESPACE,
    clauses_catalogue_file,
    validated_json,
)
from sovkit.oscal.results import assessment_results
from sovkit.verify.cli import write_oscal
from sovkit.verify.report import load_controls
from sovkit.verify.verdict import EVIDENCED, FAILED, NOT_EVIDENCED, PARTLY_EVIDENCED


def result_of(report):
    """The run's one result, as trestle reads it back from the JSON the kit writes."""
    (body,) = json.loads(validated_json(assessment_results(report))).values()
    (result,) = AssessmentResults.parse_obj(body).results
    return result


def prop(item, name: str) -> str:
    (value,) = [p.value for p in item.props if p.name == name and str(p.ns) == NAMESPACE]
    return value


def states(result) -> dict[str, tuple[str, str]]:
    """{clause statement: (satisfied | not-satisfied, clause verdict)}"""
    return {f.target.target_id: (f.target.status.state.value, prop(f, "clause-verdict")) for f in result.findings}


def test_one_observation_per_check_naming_its_control_host_outcome_and_evidence():
    results = changed(every_check_passed(), "SOV-GW-001", "monitor-1", outcome="skipped", applicable=False,
                      message="not applicable: no gateway runs on this host")
    result = result_of(run(results))
    hosts = {item.uuid: item.props[0].value for item in result.local_definitions.inventory_items}
    assert sorted(hosts.values()) == sorted(HOSTS)
    seen = {(prop(o, "control"), hosts[o.subjects[0].subject_uuid], prop(o, "check")): o for o in result.observations}
    assert sorted(seen) == sorted((r.control, r.host, r.nodeid) for r in results)
    skipped = seen[("SOV-GW-001", "monitor-1", "test_x.py::test_sov_gw_001[1]")]
    assert (prop(skipped, "outcome"), prop(skipped, "applicable")) == ("skipped", "false")
    assert prop(skipped, "skip-reason") == "not applicable: no gateway runs on this host"
    assert [e.description for e in skipped.relevant_evidence] == ["SOV-GW-001 looked at item 1"]


def test_every_clause_evidenced_is_satisfied_and_one_no_control_evidences_is_not():
    result = result_of(run(every_check_passed()))
    named = {clause for control in load_controls().values() for clause in control["clauses"]}
    assert states(result) == {f"{clause}_smt": ("satisfied", EVIDENCED) if clause in named else
                              ("not-satisfied", NOT_EVIDENCED) for clause in run([]).clauses}
    assert "operator_security" not in named  # POPIA s. 21 binds the operator's contract: no host check proves it
    assert prop(result, "site-verdict") == "NOT FULLY EVIDENCED"
    assert (result.start.isoformat(), result.end.isoformat()) == ("2026-01-05T10:00:00+00:00",
                                                                   "2026-01-05T10:00:42+00:00")


def test_a_failed_control_leaves_its_clauses_not_satisfied():
    results = changed(every_check_passed(), "SOV-NET-003", "serving-1", outcome="failed", message="egress open")
    findings = states(result_of(run(results)))
    assert findings["cross_border_transfer_smt"] == ("not-satisfied", FAILED)
    assert findings["breach_notification_smt"] == ("satisfied", EVIDENCED)


def test_a_partly_evidenced_clause_is_not_satisfied():
    results = changed(every_check_passed(), "SOV-AUD-002", "monitor-1", outcome="skipped",
                      message="a container cannot prove auditd")
    result = result_of(run(results))
    finding = next(f for f in result.findings if f.target.target_id == "security_safeguards_smt")
    assert (finding.target.status.state.value, prop(finding, "clause-verdict")) == ("not-satisfied", PARTLY_EVIDENCED)
    assert "SOV-AUD-002 skipped on monitor-1: a container cannot prove auditd" in finding.description
    related = {o.uuid for o in result.observations if prop(o, "control") == "SOV-AUD-002"}
    assert related <= {r.observation_uuid for r in finding.related_observations}


def test_the_same_run_gives_the_same_document_and_another_run_another():
    first = validated_json(assessment_results(run(every_check_passed())))
    assert validated_json(assessment_results(run(every_check_passed()))) == first
    later = validated_json(assessment_results(run(every_check_passed(), started="2026-01-06T10:00:00+00:00")))
    assert json.loads(later)["assessment-results"]["uuid"] != json.loads(first)["assessment-results"]["uuid"]


def test_a_host_the_suite_could_not_run_on_is_observed():
    report = run([check("serving-1", "SOV-OS-001", 1)])
    report.host_errors = {"monitor-1": "ssh: connection refused"}
    result = result_of(report)
    unrun = [o for o in result.observations if prop(o, "outcome") == "could-not-run"]
    assert [o.description for o in unrun] == ["ssh: connection refused"]
    assert prop(result, "site-verdict") == "NOT PROVEN"


def test_verify_writes_the_oscal_folder(tmp_path):
    written = write_oscal(run(every_check_passed()), tmp_path / "oscal", Console(file=None, quiet=True))
    names = {p.name for p in written}
    assert {ASSESSMENT_RESULTS, COMPONENT_DEFINITION, CONTROLS_CATALOGUE, clauses_catalogue_file(PROFILE)} <= names
    assert sorted(p.name for p in (tmp_path / "oscal").iterdir()) == sorted(names)
    results = json.loads((tmp_path / "oscal" / ASSESSMENT_RESULTS).read_text())["assessment-results"]
    assert {link["href"] for link in results["results"][0]["links"]} <= names
