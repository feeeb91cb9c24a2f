"""The compliance report: per host and control, pass/fail/skip with evidence; a summary per law clause.

Written three ways from one :class:`Report`: JSON (machines), HTML (people), JUnit XML (CI).
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

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


@dataclass
class Report:
    site: str
    law: str
    clauses: dict[str, str]  # clause id -> citation, from the country profile
    results: list[CheckResult]
    started: str  # ISO 8601, UTC
    duration_s: float
    kit_version: str
    kit_commit: str
    hosts: dict[str, str] = field(default_factory=dict)  # host -> how it was reached
    host_errors: dict[str, str] = field(default_factory=dict)  # host -> why its run failed
    controls: dict[str, dict[str, Any]] = field(default_factory=load_controls)

    # -- summaries ------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
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

    def by_clause(self) -> dict[str, dict[str, Any]]:
        """Per law clause: the controls evidencing it and how they fared across all hosts."""
        per_control: dict[str, Counter] = {}
        for controls in self.by_host_control().values():
            for cid, entry in controls.items():
                per_control.setdefault(cid, Counter())[entry["status"]] += 1
        out = {}
        for clause, cite in sorted(self.clauses.items()):
            cids = sorted(cid for cid, c in self.controls.items() if clause in c.get("clauses", []))
            statuses = Counter()
            for cid in cids:
                statuses.update(per_control.get(cid, Counter({"not run": 1})))
            status = "failed" if statuses["failed"] or statuses["error"] else (
                "passed" if statuses["passed"] else "not evidenced")
            out[clause] = {"citation": cite, "controls": cids, "status": status, "counts": dict(statuses)}
        return out

    # -- writers --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site, "law": self.law, "started": self.started, "duration_s": round(self.duration_s, 2),
            "kit": {"version": self.kit_version, "commit": self.kit_commit},
            "ok": self.ok, "totals": self.totals(), "hosts": self.hosts, "host_errors": self.host_errors,
            "clauses": self.by_clause(),
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
                    ET.SubElement(case, "failure", message=_first_line(r.message)).text = r.message
                elif r.outcome == "error":
                    ET.SubElement(case, "error", message=_first_line(r.message)).text = r.message
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
        path.write_text(render_html(self))
        return path


def _status(entry: dict[str, Any]) -> str:
    if entry["failed"] or entry["error"]:
        return "failed"
    return "passed" if entry["passed"] else "skipped"


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")[:200]


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b;max-width:1200px}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}th{background:#f2f2f2}
.passed{color:#0a6b2e;font-weight:600}.failed,.error{color:#b00020;font-weight:600}.skipped{color:#7a5a00}
.not{color:#666}details{margin:.2rem 0}pre{white-space:pre-wrap;font-size:.8rem;background:#f7f7f7;padding:.4rem}
"""


def render_html(report: Report) -> str:
    e = html.escape
    data = report.to_dict()
    totals = data["totals"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>sovkit compliance report: {e(report.site)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Compliance report: {e(report.site)}</h1>",
        f"<p>Law: <b>{e(report.law)}</b>. Run: {e(report.started)} ({data['duration_s']} s). "
        f"Kit: sovkit {e(report.kit_version)}, commit <code>{e(report.kit_commit)}</code>.</p>",
        f"<p class='{'passed' if report.ok else 'failed'}'>{'COMPLIANT' if report.ok else 'NOT COMPLIANT'}: "
        + ", ".join(f"{n} {o}" for o, n in totals.items()) + "</p>",
        "<h2>By law clause</h2><table><tr><th>Clause</th><th>Citation</th><th>Status</th><th>Controls</th></tr>",
    ]
    for clause, c in data["clauses"].items():
        cls = c["status"].split()[0]
        parts.append(f"<tr><td>{e(clause)}</td><td>{e(c['citation'])}</td><td class='{cls}'>{e(c['status'])}</td>"
                     f"<td>{e(', '.join(c['controls']))}</td></tr>")
    parts.append("</table>")
    for host, err in data["host_errors"].items():
        parts.append(f"<h2>{e(host)}</h2><p class='error'>The suite did not run on this host:</p><pre>{e(err)}</pre>")
    for host, controls in data["results"].items():
        parts.append(f"<h2>Host {e(host)} <small>({e(data['hosts'].get(host, ''))})</small></h2>")
        parts.append("<table><tr><th>Control</th><th>Title</th><th>CIS Debian 12</th><th>Status</th>"
                     "<th>Checks</th></tr>")
        for cid, entry in controls.items():
            checks = "".join(
                f"<details><summary class='{c['outcome']}'>{e(c['outcome'])}: {e(c['name'])}</summary>"
                + (f"<pre>{e(chr(10).join(c['evidence']))}</pre>" if c["evidence"] else "")
                + (f"<pre>{e(c['message'])}</pre>" if c["message"] else "") + "</details>"
                for c in entry["checks"])
            parts.append(f"<tr><td>{e(cid)}</td><td>{e(entry['title'])}</td><td>{e(', '.join(entry['cis']))}</td>"
                         f"<td class='{entry['status']}'>{e(entry['status'])}</td><td>{checks}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
