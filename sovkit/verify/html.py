"""The compliance report as people read it: the site's verdict first, then the verdict per law clause in the
country's own wording and citation, then what failed or is not evidenced, then each host's checks."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from sovkit.verify.verdict import COMPLIANT, EVIDENCED, NOT_COMPLIANT, NOT_PROVEN

if TYPE_CHECKING:
    from sovkit.verify.report import Report

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b;max-width:1200px}
h1{font-size:1.4rem}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}th{background:#f2f2f2}
.passed,.evidenced{color:#0a6b2e;font-weight:600}.failed,.error{color:#b00020;font-weight:600}
.skipped,.partly,.not{color:#7a5a00;font-weight:600}
details{margin:.2rem 0}pre{white-space:pre-wrap;font-size:.8rem;background:#f7f7f7;padding:.4rem}
"""
# The CSS class of a site verdict: its colour.
_SITE_CLASS = {COMPLIANT: "passed", NOT_COMPLIANT: "failed", NOT_PROVEN: "failed"}
e = html.escape


def render_html(report: Report) -> str:
    data = report.to_dict()
    totals = data["totals"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(data['verdict'])}: sovkit compliance report of {e(report.site)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1 class='{_SITE_CLASS.get(data['verdict'], 'not')}'>{e(data['verdict_headline'])}</h1>",
        f"<p>Compliance report of <b>{e(report.site)}</b> under <b>{e(report.law)}</b>. Run: {e(report.started)} "
        f"({data['duration_s']} s). Kit: sovkit {e(report.kit_version)}, commit <code>{e(report.kit_commit)}</code>. "
        "Checks: " + ", ".join(f"{n} {o}" for o, n in totals.items())
        + f" ({data['not_applicable']} of the skipped do not apply to their host).</p>",
        *_clause_table(data["clauses"]),
        *_shortfalls(data),
    ]
    for host, controls in data["results"].items():
        parts += _host_table(host, data["hosts"].get(host, ""), controls)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _verdict_class(verdict: str) -> str:
    return verdict.split()[0]  # evidenced, partly, not, failed


def _clause_table(clauses: dict[str, Any]) -> list[str]:
    parts = ["<h2>Verdict per clause</h2><table><tr><th>Clause</th><th>Citation</th><th>Verdict</th>"
             "<th>Controls</th></tr>"]
    for clause, c in clauses.items():
        parts.append(f"<tr><td>{e(c['title'])} <small>({e(clause)})</small></td><td>{e(c['cite'])}</td>"
                     f"<td class='{_verdict_class(c['verdict'])}'>{e(c['verdict'])}</td>"
                     f"<td>{e(', '.join(c['controls']) or '-')}</td></tr>")
    parts.append("</table>")
    return parts


def _shortfalls(data: dict[str, Any]) -> list[str]:
    """What keeps the site from compliant: hosts the suite could not run on, then each clause not evidenced."""
    short = {clause: c for clause, c in data["clauses"].items() if c["verdict"] != EVIDENCED}
    if not short and not data["host_errors"]:
        return []
    parts = ["<h2>Failing and not evidenced</h2>"]
    for host, err in data["host_errors"].items():
        parts.append(f"<h3 class='error'>{e(host)}: the suite could not run</h3><pre>{e(err)}</pre>")
    for clause, c in short.items():
        parts.append(f"<h3>{e(c['cite'])}, {e(c['title'])} <small>({e(clause)})</small>: "
                     f"<span class='{_verdict_class(c['verdict'])}'>{e(c['verdict'])}</span></h3><ul>"
                     + "".join(f"<li>{e(reason)}</li>" for reason in c["reasons"]) + "</ul>")
    return parts


def _host_table(host: str, reached: str, controls: dict[str, Any]) -> list[str]:
    parts = [f"<h2>Host {e(host)} <small>({e(reached)})</small></h2>",
             "<table><tr><th>Control</th><th>Title</th><th>CIS Debian 12</th><th>Status</th><th>Checks</th></tr>"]
    for cid, entry in controls.items():
        checks = "".join(
            f"<details><summary class='{c['outcome']}'>{e(c['outcome'])}"
            f"{'' if c['applicable'] else ' (not applicable)'}: {e(c['name'])}</summary>"
            + (f"<pre>{e(chr(10).join(c['evidence']))}</pre>" if c["evidence"] else "")
            + (f"<pre>{e(c['message'])}</pre>" if c["message"] else "") + "</details>"
            for c in entry["checks"])
        parts.append(f"<tr><td>{e(cid)}</td><td>{e(entry['title'])}</td><td>{e(', '.join(entry['cis']))}</td>"
                     f"<td class='{_verdict_class(entry['status'])}'>{e(entry['status'])}</td><td>{checks}</td></tr>")
    parts.append("</table>")
    return parts
