"""Reports built from check results, as the runner builds them, for the verdict tests: a small catalogue and law."""

from __future__ import annotations

from sovkit.verify.report import CheckResult, Report

# Two clauses; `egress` is evidenced by two controls, `audit` by one, `orphan` by none.
CATALOGUE = {
    "SOV-NET-003": {"title": "Egress only in country", "cis": [], "clauses": ["egress"]},
    "SOV-GW-001": {"title": "Gateway TLS", "cis": [], "clauses": ["egress"]},
    "SOV-AUD-002": {"title": "auditd runs", "cis": [], "clauses": ["audit"]},
}
CLAUSES = {"egress": {"cite": "Act s. 48", "title": "Transfer out of the country"},
           "audit": {"cite": "Act s. 41", "title": "Safeguards by design"}}
HOSTS = ("serving-1", "monitor-1")


def check(host: str, control: str, outcome: str, message: str = "", applicable: bool = True) -> CheckResult:
    return CheckResult(host=host, nodeid=f"test_{control}", name=f"test_{control}", control=control, outcome=outcome,
                       message=message, applicable=applicable)


def passed_everywhere(control: str) -> list[CheckResult]:
    return [check(host, control, "passed") for host in HOSTS]


def report(results: list[CheckResult], clauses: dict | None = None, host_errors: dict | None = None) -> Report:
    return Report(site="testsite", law="Act 2019", clauses=CLAUSES if clauses is None else clauses, results=results,
                  started="2025-01-01T00:00:00+00:00", duration_s=1.0, kit_version="test", kit_commit="abc",
                  hosts={h: f"ssh://root@{h}:22" for h in HOSTS}, host_errors=host_errors or {},
                  controls=CATALOGUE)


def all_evidenced() -> list[CheckResult]:
    """Every control passed on every host, the gateway's skipped on the host that runs none."""
    return [*passed_everywhere("SOV-NET-003"), *passed_everywhere("SOV-AUD-002"),
            check("serving-1", "SOV-GW-001", "passed"),
            check("monitor-1", "SOV-GW-001", "skipped", "not applicable: no gateway runs on this host", False)]


def without(results: list[CheckResult], control: str, host: str | None = None) -> list[CheckResult]:
    """The results less those of the control (on that host only, if given)."""
    return [r for r in results if not (r.control == control and (host is None or r.host == host))]
