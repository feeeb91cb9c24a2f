"""`sovkit evidence diff` names a control broken on purpose, a fixed one, a changed clause verdict, an added host
and a changed evidence value, from packs or report.json files, and exits 1 only when something got worse."""

from __future__ import annotations

import json
from pathlib import Path

from verify_runs import RESOLVER, changed, local_site, results, write_run

from sovkit.cli import run
from sovkit.evidence.pack import build_pack

BROKEN = ("serving-1", "SOV-NET-003")  # egress allowlist: the clause of transfer out of the country follows it
NEW_RESOLVER = "nameservers: ['203.0.113.9']"


def report_of(tmp_path: Path, name: str, checks) -> Path:
    return write_run(tmp_path / name, checks) / "report.json"


def diff(old: Path, new: Path, capsys, *extra: str) -> tuple[int, str]:
    status = run(["evidence", "diff", str(old), str(new), *extra])
    out = capsys.readouterr()
    return status, out.out + out.err


def test_a_broken_control_and_its_clause_get_worse(tmp_path, capsys):
    old = report_of(tmp_path, "old", results())
    new = report_of(tmp_path, "new", changed(results(), *BROKEN, outcome="failed", message="egress to 8.8.8.8 open"))
    status, out = diff(old, new, capsys)
    assert status == 1
    assert "NEWLY FAILING: serving-1: SOV-NET-003 (passed -> failed)" in out
    assert "WORSE: DPA 2019 s. 48 (cross_border_transfer): evidenced -> failed" in out
    assert "got worse" in out.splitlines()[-1]


def test_a_fix_an_added_host_and_evidence_drift_are_not_worse(tmp_path, capsys):
    old = report_of(tmp_path, "old", changed(results(("serving-1",)), *BROKEN, outcome="failed", message="open"))
    new_checks = changed(results(("serving-1", "monitor-1")), "serving-1", "SOV-DNS-001", evidence=[NEW_RESOLVER])
    status, out = diff(old, report_of(tmp_path, "new", new_checks), capsys)
    assert status == 0, out
    assert "fixed: serving-1: SOV-NET-003 (failed -> passed)" in out
    assert "clause: DPA 2019 s. 48 (cross_border_transfer): failed -> evidenced" in out
    assert "host added: monitor-1" in out
    assert f"evidence drift: serving-1: SOV-DNS-001 test_SOV-DNS-001\n  - {RESOLVER}\n  + {NEW_RESOLVER}" in out
    assert out.splitlines()[-1] == "nothing got worse"


def test_packs_diff_as_their_reports_do_and_json_is_for_machines(tmp_path, capsys):
    site, key = local_site(), tmp_path / "key"
    old = build_pack(site, write_run(tmp_path / "old", results(), "2026-12-01T02:00:00+00:00"), tmp_path, key)
    new_run = write_run(tmp_path / "new", changed(results(), *BROKEN, outcome="failed", message="open"),
                        "2026-12-02T02:00:00+00:00")
    new = build_pack(site, new_run, tmp_path, key)
    status, out = diff(old, new, capsys, "--json")
    assert status == 1
    found = json.loads(out)
    assert found["worse"] is True
    assert found["newly_failing"] == [{"host": "serving-1", "control": "SOV-NET-003", "old": "passed",
                                       "new": "failed"}]
    assert "cross_border_transfer" in [c["clause"] for c in found["clauses"] if c["worse"]]


def test_the_same_run_twice_shows_no_change(tmp_path, capsys):
    report = report_of(tmp_path, "run", results())
    status, out = diff(report, report, capsys)
    assert status == 0
    assert "no change in controls, clauses, hosts or evidence" in out


def test_a_file_that_is_no_report_is_named(tmp_path, capsys):
    junk = tmp_path / "notes.json"
    junk.write_text('{"hello": 1}\n')
    status, out = diff(junk, junk, capsys)
    assert status == 2
    assert f"{junk}: not a report of `sovkit verify`" in out
