"""A verdict per law clause and one for the site, from the checks' results (sovkit/verify/verdict.py): never
COMPLIANT while a clause is failed, partly evidenced or not evidenced, and a skip where a check does not apply to a
host takes nothing away."""

from __future__ import annotations

from verify_reports import all_evidenced, check, passed_everywhere, report, without

from sovkit.verify.verdict import (
    COMPLIANT,
    EVIDENCED,
    FAILED,
    NOT_COMPLIANT,
    NOT_EVIDENCED,
    NOT_FULLY_EVIDENCED,
    NOT_PROVEN,
    PARTLY_EVIDENCED,
)

AUDITD_IN_CONTAINER = "container host: auditd cannot talk to the kernel audit socket from a container"


def test_every_control_passed_where_it_applies_is_evidenced_and_compliant():
    done = report(all_evidenced())
    assert {c: v.verdict for c, v in done.by_clause().items()} == {"audit": EVIDENCED, "egress": EVIDENCED}
    assert all(v.reasons == [] for v in done.by_clause().values())
    assert done.verdict().verdict == COMPLIANT
    assert done.verdict().headline.startswith("COMPLIANT: ")


def test_a_check_skipped_where_it_applies_leaves_the_clause_partly_evidenced_with_the_reason_per_control():
    """The gateway was skipped as unproven on the host that runs it: its clause passed elsewhere, so partly."""
    results = [*without(all_evidenced(), "SOV-GW-001", "serving-1"),
               check("serving-1", "SOV-GW-001", "skipped", "the gateway is not installed on this host")]
    egress = report(results).by_clause()["egress"]
    assert egress.verdict == PARTLY_EVIDENCED
    assert egress.reasons == ["SOV-GW-001 skipped on serving-1: the gateway is not installed on this host"]


def test_the_same_skip_marked_not_applicable_costs_nothing():
    results = [*without(all_evidenced(), "SOV-GW-001", "serving-1"),
               check("serving-1", "SOV-GW-001", "skipped", "not applicable: no gateway runs on this host", False)]
    assert report(results).by_clause()["egress"].verdict == EVIDENCED


def test_a_control_that_never_ran_leaves_its_clause_partly_evidenced():
    egress = report(without(all_evidenced(), "SOV-GW-001")).by_clause()["egress"]
    assert egress.verdict == PARTLY_EVIDENCED
    assert egress.reasons == ["SOV-GW-001 did not run on any host"]


def test_a_clause_whose_only_control_was_skipped_everywhere_it_applies_is_not_evidenced():
    results = [*without(all_evidenced(), "SOV-AUD-002"),
               *(check(h, "SOV-AUD-002", "skipped", AUDITD_IN_CONTAINER) for h in ("serving-1", "monitor-1"))]
    audit = report(results).by_clause()["audit"]
    assert audit.verdict == NOT_EVIDENCED
    assert audit.reasons == [f"SOV-AUD-002 skipped on monitor-1, serving-1: {AUDITD_IN_CONTAINER}"]


def test_a_clause_whose_controls_apply_to_no_host_is_not_evidenced():
    results = [*without(all_evidenced(), "SOV-AUD-002"),
               check("serving-1", "SOV-AUD-002", "skipped", "not applicable: nothing to audit", False)]
    audit = report(results).by_clause()["audit"]
    assert audit.verdict == NOT_EVIDENCED
    assert audit.reasons == ["SOV-AUD-002 on every host checked: not applicable: nothing to audit"]


def test_a_clause_no_control_evidences_is_not_evidenced():
    clauses = {"orphan": {"cite": "Act s. 50", "title": "Processing in the country"}}
    orphan = report(all_evidenced(), clauses=clauses).by_clause()["orphan"]
    assert (orphan.verdict, orphan.controls, orphan.reasons) == (
        NOT_EVIDENCED, [], ["no control of the suite evidences it"])


def test_a_failed_or_errored_check_fails_its_clause_and_the_site():
    for outcome in ("failed", "error"):
        results = [*without(all_evidenced(), "SOV-NET-003", "monitor-1"),
                   check("monitor-1", "SOV-NET-003", outcome, "AssertionError: 203.0.113.20 reachable\nmore")]
        done = report(results)
        egress = done.by_clause()["egress"]
        assert egress.verdict == FAILED
        assert egress.reasons == [f"SOV-NET-003 failed on monitor-1: test_SOV-NET-003 {outcome}: "
                                  "AssertionError: 203.0.113.20 reachable"]
        assert done.verdict().verdict == NOT_COMPLIANT
        assert done.verdict().headline == "NOT COMPLIANT: failed: egress (Act s. 48) (1 checks failed)"


def test_a_failure_outranks_a_partly_evidenced_clause():
    results = [*without(all_evidenced(), "SOV-AUD-002"), check("serving-1", "SOV-AUD-002", "failed", "no"),
               check("monitor-1", "SOV-AUD-002", "skipped", AUDITD_IN_CONTAINER)]
    assert report(results).by_clause()["audit"].verdict == FAILED


def test_short_of_evidence_the_site_is_not_fully_evidenced_and_says_which_clauses():
    results = [*without(all_evidenced(), "SOV-AUD-002"), *passed_everywhere("SOV-AUD-002")[:1],
               check("monitor-1", "SOV-AUD-002", "skipped", AUDITD_IN_CONTAINER)]
    clauses = {"orphan": {"cite": "Act s. 50", "title": "Processing in the country"},
               **report([]).clauses}
    verdict = report(results, clauses=clauses).verdict()
    assert verdict.verdict == NOT_FULLY_EVIDENCED
    assert verdict.headline == ("NOT FULLY EVIDENCED: no check failed, but partly evidenced: audit (Act s. 41); "
                                "not evidenced: orphan (Act s. 50)")


def test_a_host_the_suite_could_not_run_on_leaves_the_site_not_proven():
    verdict = report(all_evidenced(), host_errors={"monitor-1": "ssh: connection refused"}).verdict()
    assert verdict.verdict == NOT_PROVEN
    assert verdict.headline == "NOT PROVEN: the suite could not run on monitor-1"


def test_a_failed_check_of_no_clause_still_makes_the_site_not_compliant():
    results = [*all_evidenced(), check("serving-1", None, "failed", "boom")]
    assert report(results).verdict().verdict == NOT_COMPLIANT


def test_no_clauses_at_all_is_never_compliant():
    assert report(all_evidenced(), clauses={}).verdict().verdict == NOT_FULLY_EVIDENCED
