"""The site's verdict is what a reader meets first: the first line of `sovkit verify`'s summary and of report.html,
a field of report.json; and the exit status follows it, --require-evidence included."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from verify_reports import all_evidenced, check, report, without

from sovkit.verify.cli import EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_NO_CHECK_FAILED, exit_status, print_summary, verify

UNPROVEN = "container host: auditd cannot talk to the kernel audit socket from a container"


def partly() -> list:
    return [*without(all_evidenced(), "SOV-AUD-002", "monitor-1"), check("monitor-1", "SOV-AUD-002", "skipped",
                                                                        UNPROVEN)]


def failed() -> list:
    return [*without(all_evidenced(), "SOV-NET-003", "monitor-1"), check("monitor-1", "SOV-NET-003", "failed", "no")]


def summary(results: list, **kwargs) -> list[str]:
    out = io.StringIO()
    print_summary(report(results, **kwargs), Console(file=out, width=200, color_system=None))
    return out.getvalue().splitlines()


def test_the_console_summary_opens_with_the_verdict_then_why():
    lines = summary(partly())
    assert lines[0] == "NOT FULLY EVIDENCED: no check failed, but partly evidenced: audit (Act s. 41)"
    assert lines[1:3] == ["  Act s. 41 (audit) partly evidenced:", f"    SOV-AUD-002 skipped on monitor-1: {UNPROVEN}"]
    assert any("Safeguards by design (audit)" in line and "partly evidenced" in line for line in lines)
    assert lines[-1] == ("checks: 4 passed, 0 failed, 0 errors, 2 skipped (1 of them not applicable to their host), "
                         "2 hosts, in 1.0 s")


def test_the_console_summary_of_a_compliant_site_says_so_first():
    assert summary(all_evidenced())[0].startswith("COMPLIANT: ")


def test_report_html_opens_with_the_verdict_then_the_clauses_in_the_laws_words(tmp_path: Path):
    text = report(partly()).write_html(tmp_path / "report.html").read_text()
    body = text.split("<body>", 1)[1]
    first = re.sub(r"<[^>]+>", "", body.strip().splitlines()[0])
    assert first == "NOT FULLY EVIDENCED: no check failed, but partly evidenced: audit (Act s. 41)"
    assert "<title>NOT FULLY EVIDENCED: " in text
    order = [body.index(s) for s in ("Verdict per clause", "Safeguards by design", "Failing and not evidenced",
                                     f"SOV-AUD-002 skipped on monitor-1: {UNPROVEN}", "Host monitor-1")]
    assert order == sorted(order)


def test_report_html_of_a_compliant_site_lists_nothing_unevidenced(tmp_path: Path):
    text = report(all_evidenced()).write_html(tmp_path / "report.html").read_text()
    assert "<h1 class='passed'>COMPLIANT: " in text and "Failing and not evidenced" not in text
    assert "skipped (not applicable): test_SOV-GW-001" in text


def test_report_json_carries_the_site_verdict_and_each_clauses_verdict_and_reasons(tmp_path: Path):
    data = json.loads(report(partly()).write_json(tmp_path / "report.json").read_text())
    assert list(data)[:2] == ["verdict", "verdict_headline"]
    assert data["verdict"] == "NOT FULLY EVIDENCED" and data["no_check_failed"] is True
    assert data["clauses"]["audit"] == {"cite": "Act s. 41", "title": "Safeguards by design",
                                        "controls": ["SOV-AUD-002"], "verdict": "partly evidenced",
                                        "reasons": [f"SOV-AUD-002 skipped on monitor-1: {UNPROVEN}"]}
    assert data["clauses"]["egress"]["verdict"] == "evidenced" and data["not_applicable"] == 1
    assert data["results"]["monitor-1"]["SOV-GW-001"]["status"] == "not applicable"


@pytest.mark.parametrize(("results", "host_errors", "plain", "required"), [
    (all_evidenced, None, EXIT_NO_CHECK_FAILED, EXIT_NO_CHECK_FAILED),
    (partly, None, EXIT_NO_CHECK_FAILED, EXIT_FAILED),
    (failed, None, EXIT_FAILED, EXIT_FAILED),
    (all_evidenced, {"monitor-1": "ssh: refused"}, EXIT_CANNOT_RUN, EXIT_CANNOT_RUN),
], ids=["compliant", "not-fully-evidenced", "not-compliant", "not-proven"])
def test_exit_status_follows_the_verdict_and_require_evidence(results, host_errors, plain, required):
    done = report(results(), host_errors=host_errors)
    assert exit_status(done) == plain
    assert exit_status(done, require_evidence=True) == required


def test_the_command_documents_its_exit_statuses_and_require_evidence():
    text = verify.get_help(verify.make_context("verify", ["x"]))
    assert "--require-evidence" in text
    for status in ("0  no check failed", "1  a check failed; with --require-evidence",
                   "2  nothing could be proven"):
        assert status in text, text
