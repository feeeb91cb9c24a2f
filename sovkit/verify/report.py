"""The compliance report: per host and control, pass/fail/skip with evidence; a verdict per law clause and one
for the site (sovkit.verify.verdict).

Written three ways from one :class:`Report`: JSON (machines), HTML (people, sovkit.verify.html), JUnit XML (CI).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sovkit.verify.html import render_html
from sovkit.verify.verdict import ClauseVerdict, SiteVerdict, clause_verdicts, first_line, site_verdict

OUTCOMES = ("passed", "failed", "error", "skipped")


def load_controls() -> dict[str, dict[str, Any]]:
    """The control catalogue (sovkit/data/controls.yaml), by id."""
    text = resources.files("sovkit.data").joinpath("controls.yaml").read_text()
    return {c["id"]: c for c in yaml.safe_load(text)["controls"]}


@dataclass
class CheckResult:
    host: str
    nodeid: str
    name: str
    control: str | None
    outcome: str  # passed | failed | error | skipped
    duration: float = 0.0
    evidence: list[str] = field(default_factory=list)
    message: str = ""
    applicable: bool = True  # false: skipped because the check does not apply to this host


@dataclass
class Report:
    site: str
    law: str
    clauses: dict[str, dict[str, str]]  # clause id -> {cite, title}, from the country profile
    results: list[CheckResult]
    started: str  # ISO 8601, UTC
    duration_s: float
    kit_version: str
    kit_commit: str
    hosts: dict[str, str] = field(default_factory=dict)  # host -> how it was reached
    host_errors: dict[str, str] = field(default_factory=dict)  # host -> why its run failed
    controls: dict[str, dict[str, Any]] = field(default_factory=load_controls)
    profile: str = ""  # the country profile's id (sovkit/data/profiles/<id>.yaml): its clauses' OSCAL catalogue

    # -- summaries ------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        """Every host ran the suite and no check failed: what a converge needs, not a verdict (see verdict())."""
        return not self.host_errors and all(r.outcome in ("passed", "skipped") for r in self.results)

    def totals(self) -> dict[str, int]:
        counts = Counter(r.outcome for r in self.results)
        return {o: counts.get(o, 0) for o in OUTCOMES}

    def by_host_control(self) -> dict[str, dict[str, dict[str, Any]]]:
        """{host: {control: {status, passed, failed, skipped, checks: [...]}}}; a control fails if any check
        fails, passes if any passes and none fails, else is skipped."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for r in self.results:
            entry = out.setdefault(r.host, {}).setdefault(r.control or "UNMAPPED", {
                "passed": 0, "failed": 0, "error": 0, "skipped": 0, "checks": []})
            entry[r.outcome] += 1
            entry["checks"].append(r)
        for controls in out.values():
            for entry in controls.values():
                entry["status"] = _status(entry)
        return out

    def by_clause(self) -> dict[str, ClauseVerdict]:
        """Per law clause: the controls evidencing it and its verdict, with the reasons it is not evidenced."""
        return clause_verdicts(self.clauses, self.controls, self.results)

    def verdict(self) -> SiteVerdict:
        return site_verdict(self.by_clause(), self.results, self.host_errors)

    def not_applicable(self) -> int:
        """How many of the skipped checks were skipped because they do not apply to their host."""
        return sum(r.outcome == "skipped" and not r.applicable for r in self.results)

    # -- writers --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        clauses = self.by_clause()
        verdict = site_verdict(clauses, self.results, self.host_errors)
        return {
            "verdict": verdict.verdict, "verdict_headline": verdict.headline,
            "site": self.site, "profile": self.profile, "law": self.law,
            "started": self.started, "duration_s": round(self.duration_s, 2),
            "kit": {"version": self.kit_version, "commit": self.kit_commit},
            "no_check_failed": self.ok, "totals": self.totals(), "not_applicable": self.not_applicable(),
            "hosts": self.hosts, "host_errors": self.host_errors,
            "clauses": {cid: {k: v for k, v in asdict(c).items() if k != "clause"} for cid, c in clauses.items()},
            "results": {
                host: {cid: {**{k: v for k, v in entry.items() if k != "checks"},
                             "title": self.controls.get(cid, {}).get("title", ""),
                             "cis": self.controls.get(cid, {}).get("cis", []),
                             "clauses": self.controls.get(cid, {}).get("clauses", []),
                             "checks": [asdict(c) for c in entry["checks"]]}
                       for cid, entry in sorted(controls.items())}
                for host, controls in sorted(self.by_host_control().items())
            },
        }

    def write_json(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    def write_junit(self, path: Path) -> Path:
        suites = ET.Element("testsuites", name=f"sovkit verify {self.site}")
        for host in sorted({r.host for r in self.results} | set(self.host_errors)):
            results = [r for r in self.results if r.host == host]
            counts = Counter(r.outcome for r in results)
            broken = int(host in self.host_errors)
            suite = ET.SubElement(suites, "testsuite", name=host, tests=str(len(results) + broken),
                                  failures=str(counts["failed"]), errors=str(counts["error"] + broken),
                                  skipped=str(counts["skipped"]), timestamp=self.started)
            for r in results:
                case = ET.SubElement(suite, "testcase", classname=f"{host}.{r.control or 'UNMAPPED'}",
                                     name=r.name, time=f"{r.duration:.3f}")
                if r.outcome == "failed":
                    ET.SubElement(case, "failure", message=first_line(r.message)[:200]).text = r.message
                elif r.outcome == "error":
                    ET.SubElement(case, "error", message=first_line(r.message)[:200]).text = r.message
                elif r.outcome == "skipped":
                    ET.SubElement(case, "skipped", message=r.message)
                if r.evidence:
                    ET.SubElement(case, "system-out").text = "\n".join(r.evidence)
            if host in self.host_errors:
                case = ET.SubElement(suite, "testcase", classname=host, name="run")
                ET.SubElement(case, "error", message="the suite did not run").text = self.host_errors[host]
        ET.indent(suites)
        ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
        return path

    def write_html(self, path: Path) -> Path:
        path.write_text(render_html(self.to_dict()))
        return path


def _status(entry: dict[str, Any]) -> str:
    if entry["failed"] or entry["error"]:
        return "failed"
    if entry["passed"]:
        return "passed"
    return "skipped" if any(c.applicable for c in entry["checks"]) else "not applicable"
