"""`sovkit evidence STACK`, `sovkit evidence verify PACK`, `sovkit evidence diff OLD NEW` (the main CLI registers
the group)."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path

import click

from sovkit.clitools import console, errors, load_site
from sovkit.evidence.diff import diff_reports, load_report
from sovkit.evidence.keys import PRIVATE_KEY, PUBLIC_KEY
from sovkit.evidence.pack import EvidenceError, build_pack, cover_path
from sovkit.evidence.schedule import PERIODS, Schedule, check_unit_word, unit_name, write_units
from sovkit.evidence.verify import verify_pack

PACK_COMMAND = "pack"


class EvidenceGroup(click.Group):
    """`sovkit evidence STACK` is short for `sovkit evidence pack STACK`: the first word names a subcommand or a
    stack."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = [PACK_COMMAND, *args]
        return super().parse_args(ctx, args)


@click.group("evidence", cls=EvidenceGroup)
def evidence() -> None:
    """Signed evidence packs of verify runs, checked and compared offline.

    \b
    sovkit evidence STACK              pack and sign the site's latest verify run
    sovkit evidence verify PACK        check a pack's signature, completeness and digests
    sovkit evidence diff OLD NEW       what changed between two runs (packs or report.json)
    sovkit evidence watch STACK        one scheduled round: verify, pack, diff with the baseline, alert
    sovkit evidence schedule STACK     the systemd timer that runs the rounds"""


@evidence.command(PACK_COMMAND)
@click.argument("stack")
@click.option("--compliance-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The verify run's output folder.  [default: .sovkit/<site>/compliance]")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Folder the pack is written to.  [default: .sovkit/<site>/evidence]")
def pack_command(stack: str, compliance_dir: Path | None, output: Path | None) -> None:
    """Pack the latest verify run of STACK (every file of its output folder, the digests of the stack file, bundle
    manifest and runtime lock, the host facts the checks read, the run's metadata) into one tar.gz, signed with the
    site's offline key (.sovkit/<site>/evidence-key/, made on first use)."""
    from sovkit.workspace import SiteWorkspace

    site = load_site(stack)
    workspace = SiteWorkspace.of(site.name)
    started = time.perf_counter()
    try:
        path = build_pack(site, compliance_dir or workspace.compliance, output or workspace.evidence,
                          workspace.evidence_key)
    except (EvidenceError, ValueError) as err:
        errors.print(str(err), markup=False)
        raise SystemExit(1) from None
    console.print(f"evidence pack of {site.name}: {path} ({path.stat().st_size / 1024:.0f} KiB, "
                  f"{time.perf_counter() - started:.2f} s); signed with {workspace.evidence_key / PRIVATE_KEY}; "
                  f"auditors verify it with {workspace.evidence_key / PUBLIC_KEY}; its cover page, to print: "
                  f"{cover_path(path)}", markup=False)


@evidence.command("verify")
@click.argument("pack", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The site's evidence public key (PEM) as the auditor holds it.  [default: the pack's own, which "
                   "proves integrity only]")
def verify_command(pack: Path, public_key: Path | None) -> None:
    """Check PACK: signed by the public key, every file the signed statement names present with its sha256, and
    no other file. Exit 0 verified, 1 not (each missing, added or altered file named)."""
    try:
        result = verify_pack(pack, public_key)
    except (EvidenceError, ValueError) as err:
        errors.print(str(err), markup=False)
        raise SystemExit(1) from None
    (console if result.ok else errors).print(result.report(), markup=False)
    raise SystemExit(0 if result.ok else 1)


@evidence.command("diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff_command(old: Path, new: Path, as_json: bool) -> None:
    """What changed from OLD to NEW (evidence packs or report.json files): controls newly failing or fixed per
    host, clause verdicts, hosts added or removed, and drift in what the checks read. Exit 1 when a control newly
    fails, a clause verdict got worse or a host's suite newly could not run; 0 otherwise; 2 on unreadable input."""
    try:
        result = diff_reports(load_report(old), load_report(new), str(old), str(new))
    except EvidenceError as err:
        errors.print(str(err), markup=False)
        raise SystemExit(2) from None
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        console.print(result.text(), markup=False)
    raise SystemExit(1 if result.worse else 0)


@evidence.command("watch")
@click.argument("stack")
@click.option("--identity", "-i", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SSH private key for real sites (default: the ssh agent and ~/.ssh).")
@click.option("--alert-hours", type=click.IntRange(1, 24 * 60), default=49, show_default=True,
              help="How long a regression alert lasts unless a later round repeats it.")
def watch_command(stack: str, identity: Path | None, alert_hours: int) -> None:
    """One scheduled round for STACK: verify the site, pack and sign the run, and diff it with the baseline (the
    last pack that got no worse, .sovkit/<site>/evidence-watch/). A worse run keeps the baseline and raises
    SovkitEvidenceRegressed in the site's Alertmanager (its receivers get it); a run no worse becomes the baseline
    and resolves the alert. Exit 0 no worse, 1 worse (alerted), 2 the round could not be done."""
    from sovkit.evidence.watch import run_round

    raise SystemExit(run_round(load_site(stack), stack, identity, alert_hours, console, errors))


@evidence.command("schedule")
@click.argument("stack")
@click.option("--every", type=click.Choice(sorted(PERIODS)), default="daily", show_default=True)
@click.option("--unit-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("/etc/systemd/system"),
              show_default=True, help="Where the service and timer are written.")
@click.option("--user", default=lambda: getpass.getuser(), show_default="the current user",
              help="The account the rounds run as: the one that can reach the hosts and owns .sovkit/.")
@click.option("--identity", "-i", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SSH private key the rounds use (default: the account's ssh agent and ~/.ssh).")
def schedule_command(stack: str, every: str, unit_dir: Path, user: str, identity: Path | None) -> None:
    """Write the systemd service and timer that run `sovkit evidence watch STACK` on this machine (the one that
    holds the stack and reaches the hosts). Rerun with the same options, it changes nothing."""
    import shutil
    import sys

    from sovkit.stacks import project_root

    site = load_site(stack)
    sovkit = Path(shutil.which("sovkit") or Path(sys.executable).with_name("sovkit")).resolve()
    plan = Schedule(site.name, stack, project_root().resolve(), sovkit, user, every,
                    identity.resolve() if identity else None)
    try:
        for what, value in (("the project folder", str(plan.project_root)), ("sovkit's path", str(sovkit)),
                            ("the stack", stack), ("the key", str(plan.identity or "")), ("the user", user)):
            check_unit_word(what, value)
    except ValueError as err:
        errors.print(str(err), markup=False)
        raise SystemExit(1) from None
    for path, changed in write_units(plan, unit_dir):
        console.print(f"{'wrote' if changed else 'unchanged'}: {path}", markup=False)
    console.print(f"start it: systemctl daemon-reload && systemctl enable --now {unit_name(site.name)}.timer",
                  markup=False)
