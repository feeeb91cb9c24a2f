"""Verify outputs of the local stack's shape (its two hosts, the kit's whole control catalogue, its law's clauses),
built from CheckResults and written by the report's own writers, as `sovkit verify` writes them."""

from __future__ import annotations

from pathlib import Path

from sovkit.config import SiteConfig, load_stack
from sovkit.stacks import find_stack
from sovkit.verify.report import CheckResult, Report, load_controls

HOSTS = ("serving-1", "monitor-1")
RESOLVER = "nameservers: ['198.51.100.53']"


def local_site() -> SiteConfig:
    return load_stack(find_stack("local"))


def results(hosts: tuple[str, ...] = HOSTS) -> list[CheckResult]:
    """Every control passed on every host, each check with the evidence it read (the DNS check: the resolver)."""
    return [CheckResult(host=host, nodeid=f"test_{cid}.py::test_{cid}", name=f"test_{cid}", control=cid,
                        outcome="passed", duration=0.2,
                        evidence=[RESOLVER if cid == "SOV-DNS-001" else f"{cid} on {host}: as configured"])
            for host in hosts for cid in load_controls()]


def changed(checks: list[CheckResult], host: str, control: str, **values) -> list[CheckResult]:
    """The results with that host's check of that control changed (outcome, evidence, message...)."""
    return [CheckResult(**{**vars(r), **values}) if (r.host, r.control) == (host, control) else r for r in checks]


def write_run(folder: Path, checks: list[CheckResult], started: str = "2026-12-01T02:00:00+00:00") -> Path:
    """A verify output folder: report.json, report.html, junit.xml and the per-host records the runner keeps."""
    site = local_site()
    clauses = {cid: {"cite": c.cite, "title": c.title} for cid, c in site.profile.clauses.items()}
    hosts = sorted({r.host for r in checks})
    report = Report(site=site.name, law=site.profile.law.short_name, clauses=clauses, results=checks,
                    started=started, duration_s=42.0, kit_version="0.1.0", kit_commit="0123abc",
                    hosts={h: f"podman://local-{h}" for h in hosts})
    folder.mkdir(parents=True, exist_ok=True)
    report.write_json(folder / "report.json")
    report.write_html(folder / "report.html")
    report.write_junit(folder / "junit.xml")
    (folder / "hosts").mkdir(exist_ok=True)
    for host in hosts:
        (folder / "hosts" / f"{host}.jsonl").write_text(f'{{"host": "{host}"}}\n')
    return folder
