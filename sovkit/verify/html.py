"""The compliance report as people read it: the site's verdict first, then the verdict per law clause in the
country's own wording and citation, then what failed or is not evidenced, then each host's checks."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from sovkit.verify.verdict import COMPLIANT, EVIDENCED, NOT_COMPLIANT, NOT_PROVEN

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b;max-width:1200px;overflow-wrap:break-word}
h1{font-size:1.4rem}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}th{background:#f2f2f2}td.checks,li,code{overflow-wrap:anywhere}
.passed,.evidenced{color:#0a6b2e;font-weight:600}.failed,.error{color:#b00020;font-weight:600}
.skipped,.partly,.not{color:#7a5a00;font-weight:600}
.seal{border:2px solid #1b1b1b;padding:.5rem .8rem;margin:1rem 0}
details{margin:.2rem 0}pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:.8rem;background:#f7f7f7;
padding:.4rem}
@page{size:A4;margin:14mm 12mm}
@media print{body{margin:0;max-width:none;font-size:9pt}th,td{font-size:8pt;padding:.15rem .3rem}
h1{font-size:13pt}h2{font-size:11pt;break-after:avoid}tr{break-inside:avoid}
.hosts{break-before:page}details>summary{list-style:none}pre{font-size:7pt;background:none}}
"""
# The CSS class of a site verdict: its colour.
_SITE_CLASS = {COMPLIANT: "passed", NOT_COMPLIANT: "failed", NOT_PROVEN: "failed"}
e = html.escape


@dataclass(frozen=True)
class Seal:
    """The evidence pack a report travels in, as its cover page shows it: an auditor compares the digest with the
    file received and the key id with the site's public key."""

    pack: str
    sha256: str
    keyid: str
    public_key: str  # where the site's public key is kept


def render_html(data: dict[str, Any], seal: Seal | None = None) -> str:
    """The report (report.json's data) as one page: verdict, clauses, shortfalls, then each host's checks."""
    totals = data["totals"]
    kit = data["kit"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(data['verdict'])}: sovkit compliance report of {e(data['site'])}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1 class='{_SITE_CLASS.get(data['verdict'], 'not')}'>{e(data['verdict_headline'])}</h1>",
        *(_seal(seal) if seal else []),
        f"<p>Compliance report of <b>{e(data['site'])}</b> under <b>{e(data['law'])}</b>. Run: {e(data['started'])} "
        f"({data['duration_s']} s). Kit: sovkit {e(kit['version'])}, commit <code>{e(kit['commit'])}</code>. "
        "Checks: " + ", ".join(f"{n} {o}" for o, n in totals.items())
        + f" ({data['not_applicable']} of the skipped do not apply to their host).</p>",
        *_clause_table(data["clauses"]),
        *_shortfalls(data),
        "<div class='hosts'>",
    ]
    for host, controls in data["results"].items():
        parts += _host_table(host, data["hosts"].get(host, ""), controls)
    parts.append("</div></body></html>\n")
    return "\n".join(parts)


def _seal(seal: Seal) -> list[str]:
    return [f"<div class='seal'><b>Evidence pack</b> <code>{e(seal.pack)}</code><br>sha256 <code>{e(seal.sha256)}"
            f"</code><br>signed by key <code>{e(seal.keyid)}</code> (the site's evidence key; its public half: "
            f"<code>{e(seal.public_key)}</code>)<br>Check it: <code>sovkit evidence verify {e(seal.pack)} "
            "--public-key FILE</code>, with the public key the site gave you.</div>"]


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
                     f"<td class='{_verdict_class(entry['status'])}'>{e(entry['status'])}</td>"
                     f"<td class='checks'>{checks}</td></tr>")
    parts.append("</table>")
    return parts
