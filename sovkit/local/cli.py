"""`sovkit up --stack local` and `sovkit down --stack local` (click commands; the main CLI registers them)."""

from __future__ import annotations

import click

from sovkit.bundle.build import BundleError
from sovkit.clitools import console, errors, load_site
from sovkit.hosts import HostsError
from sovkit.local.up import UpError, down, up


def _progress(line: str) -> None:
    console.print(line, markup=False)


@click.command("up")
@click.option("--stack", default="local", show_default=True, help="A provider local stack (file or site name).")
def up_command(stack: str) -> None:
    """Bring the whole kit up on this machine: hosts, bundle, hardening, serving, monitoring, verify."""
    site = load_site(stack)
    try:
        result = up(site, _progress)
    except (UpError, BundleError, HostsError) as err:
        errors.print(str(err), markup=False)
        raise SystemExit(1) from None
    console.print(f"\n[bold]{site.name} is up[/bold]")
    for label, value in (("endpoint", result.endpoint), ("prometheus", result.prometheus),
                         ("compliance", f"{result.report} ({result.verdict})"), ("converge log", result.converge_log)):
        console.print(f"  {label:<13}{value}", markup=False)
    console.print("  try it:", markup=False)
    console.print(f"    {result.curl}", markup=False, soft_wrap=True)
    for line in result.gate.lines() if result.gate else []:
        console.print(f"  {line}", markup=False)
    console.print("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()) +
                  (f" (the quality gate {result.gate.seconds:.1f} s of the converge)" if result.gate else ""),
                  markup=False)
    raise SystemExit(0 if result.verify_status == 0 else 1)  # up converges: a skipped check does not fail it


@click.command("down")
@click.option("--stack", default="local", show_default=True, help="A provider local stack (file or site name).")
def down_command(stack: str) -> None:
    """Remove what `sovkit up` made on this machine and restore the settings it changed."""
    site = load_site(stack)
    try:
        done = down(site, _progress)
    except (UpError, HostsError) as err:
        errors.print(str(err), markup=False)
        raise SystemExit(1) from None
    console.print(f"{site.name} is down: " + ("; ".join(done) if done else "nothing was running"), markup=False)
