"""The `sovkit verify STACK` command (registered in sovkit.cli with ``main.add_command(verify)``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sovkit.oscal.common import ASSESSMENT_RESULTS, TRESTLE_VERSION, OscalError
from sovkit.oscal.write import OSCAL_DIR, write_run_documents
from sovkit.verify.report import Report
from sovkit.verify.runner import HostRun, run_verify
from sovkit.verify.verdict import COMPLIANT, EVIDENCED, NOT_COMPLIANT, NOT_PROVEN

if TYPE_CHECKING:
    from sovkit.config.site import SiteConfig

# Exit codes: 0 no check failed (skips allowed, unless --require-evidence); 1 a check failed, or with
# --require-evidence a clause is not fully evidenced; 2 the stack could not be loaded or the suite could not run on a
# host (nothing proven either way).
EXIT_NO_CHECK_FAILED, EXIT_FAILED, EXIT_CANNOT_RUN = 0, 1, 2


def exit_status(report: Report, require_evidence: bool = False) -> int:
    """The exit status of `sovkit verify` for this report (see EXIT_*)."""
    verdict = report.verdict().verdict
    if verdict == NOT_PROVEN:
        return EXIT_CANNOT_RUN
    if verdict == NOT_COMPLIANT or (require_evidence and verdict != COMPLIANT):
        return EXIT_FAILED
    return EXIT_NO_CHECK_FAILED


def print_summary(report: Report, console: Console) -> None:
    """The site's verdict first, then why (each clause not evidenced, each host that could not run), the verdict
    per clause, and the counts."""
    console.print(report.verdict().headline, markup=False, highlight=False)
    for clause in report.by_clause().values():
        if clause.verdict != EVIDENCED:
            console.print(f"  {clause.cite} ({clause.clause}) {clause.verdict}:", markup=False)
            for reason in clause.reasons:
                console.print(f"    {reason}", markup=False)
    for host, err in report.host_errors.items():
        console.print(f"[red]{escape(host)}: the suite could not run[/red]")
        console.print(err[-1500:], markup=False)
    table = Table(title=f"{report.law}: verdict per clause")
    for col in ("clause", "citation", "verdict", "controls"):
        table.add_column(col)
    for clause in report.by_clause().values():
        table.add_row(f"{clause.title} ({clause.clause})", clause.cite, clause.verdict,
                      ", ".join(clause.controls) or "-")
    console.print(table)
    totals = report.totals()
    console.print(f"checks: {totals['passed']} passed, {totals['failed']} failed, {totals['error']} errors, "
                  f"{totals['skipped']} skipped ({report.not_applicable()} of them not applicable to their host), "
                  f"{len(report.hosts)} hosts, in {report.duration_s:.1f} s", markup=False)


def write_oscal(report: Report, out_dir: Path, console: Console) -> list[Path]:
    """The run's OSCAL assessment results and the catalogues and component definition they point to. A document
    trestle rejects is reported, not fatal: the checks ran and the other reports stand."""
    try:
        written = write_run_documents(report, out_dir)
    except (OscalError, FileNotFoundError, ValueError) as err:
        console.print(f"OSCAL documents not written: {err}", markup=False)
        return []
    console.print(f"OSCAL: {out_dir / ASSESSMENT_RESULTS} (with the catalogues and component definition it points "
                  f"to; validated by compliance-trestle {TRESTLE_VERSION})", markup=False)
    return written


def connection_env(site: SiteConfig, identity: Path | None) -> dict[str, str]:
    """The environment the connections to a site's hosts need: the operator's SSH key for real sites, sovkit's
    podman settings for `local`."""
    env: dict[str, str] = {}
    if identity:
        env["SOVKIT_SSH_IDENTITY"] = str(identity.resolve())
    if site.infrastructure.provider == "local" and "CONTAINERS_CONF" not in os.environ:
        from sovkit.hosts import default_cache_dir

        conf = default_cache_dir() / "podman" / "containers.conf"
        if conf.exists():  # the hosts were started with sovkit's podman settings (runc)
            env["CONTAINERS_CONF"] = str(conf)
    return env


@click.command("verify")
@click.argument("stack")
@click.option("--output-dir", "-o", type=click.Path(file_okay=False, path_type=Path),
              help="Where report.json, report.html, junit.xml and oscal/ (OSCAL assessment results, catalogues, "
                   "component definition) are written.  [default: .sovkit/<site>/compliance]")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Hosts checked in parallel.")
@click.option("--host", "hosts", multiple=True, help="Check only this host (repeatable).")
@click.option("--identity", "-i", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SSH private key for real sites (default: the ssh agent and ~/.ssh).")
@click.option("--require-evidence", is_flag=True,
              help="Exit 1 also when a law clause is not fully evidenced (a check skipped where it applies, as in "
                   "a container): for CI on real hosts.")
def verify(stack: str, output_dir: Path | None, jobs: int, hosts: tuple[str, ...], identity: Path | None,
           require_evidence: bool) -> None:
    """Prove a site's hosts comply: run the compliance suite against every host of STACK (a stack
    file, or a site name such as `local`), in parallel, over ssh for real sites and podman for
    `local`, and write JUnit XML plus a compliance report (HTML and JSON) to --output-dir, and OSCAL
    assessment results (with the catalogues and component definition they point to) to its oscal/ folder. The
    summary opens with the site's verdict: COMPLIANT (every clause of the law evidenced), NOT
    COMPLIANT (a check failed), NOT FULLY EVIDENCED (none failed, but a clause is partly or not
    evidenced) or NOT PROVEN (the suite could not run on a host).

    \b
    Exit status:
      0  no check failed (checks skipped with their reason allowed)
      1  a check failed; with --require-evidence, also a clause not fully evidenced
      2  nothing could be proven: bad stack, unknown host, or the suite could not run on a host"""
    from sovkit.config import load_stack
    from sovkit.errors import StackError
    from sovkit.render.inventory import render_inventory
    from sovkit.stacks import find_stack
    from sovkit.workspace import SiteWorkspace

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        site = load_stack(find_stack(stack))
    except (StackError, FileNotFoundError) as err:
        console.print(str(err), markup=False)
        raise SystemExit(EXIT_CANNOT_RUN) from None
    inventory = render_inventory(site)
    output_dir = output_dir or SiteWorkspace.of(site.name).compliance
    env = connection_env(site, identity)

    def progress(host: str, run: HostRun) -> None:
        counts = {o: sum(r.outcome == o for r in run.results) for o in ("passed", "failed", "error", "skipped")}
        state = "[red]could not run[/red]" if run.broken else (
            "[red]a check failed[/red]" if counts["failed"] or counts["error"] else "no check failed")
        console.print(f"  {escape(host)}: {state}: {counts['passed']} passed, {counts['failed']} failed, "
                      f"{counts['error']} errors, {counts['skipped']} skipped ({run.seconds:.1f} s)")

    console.print(f"Verifying {escape(site.name)} ({stack}): {jobs} hosts at a time...")
    try:
        report = run_verify(inventory, output_dir, jobs=jobs, hosts=list(hosts) or None, env=env, progress=progress)
    except (ValueError, FileNotFoundError) as err:
        console.print(str(err), markup=False)
        raise SystemExit(EXIT_CANNOT_RUN) from None
    print_summary(report, console)
    console.print(f"Report: {output_dir / 'report.html'} (JSON: {output_dir / 'report.json'}, "
                  f"JUnit: {output_dir / 'junit.xml'})", markup=False)
    write_oscal(report, output_dir / OSCAL_DIR, console)
    raise SystemExit(exit_status(report, require_evidence))


def run(argv: list[str] | None = None) -> int:
    """Run the command alone (tests; `python -m sovkit.verify.cli`), returning its exit status."""
    try:
        verify.main(args=argv, prog_name="sovkit verify", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
