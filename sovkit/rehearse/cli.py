"""`sovkit rehearse STACK [--vm HOST|ROLE]... [--down]` (a click command; the main CLI registers it)."""

from __future__ import annotations

import click

from sovkit.clitools import console, errors, load_site


def _progress(line: str) -> None:
    console.print(line, markup=False)


@click.command("rehearse")
@click.argument("stack")
@click.option("--vm", "vm_names", multiple=True, metavar="HOST|ROLE",
              help="Put this host (or every host of this role) on a virtual machine with its own kernel, to prove "
                   "what a container cannot (auditd, sysctls, modules, chrony, mounts, encryption at rest). "
                   "Repeatable. Software emulation: minutes per VM.")
@click.option("--down", "take_down", is_flag=True, help="Remove the rehearsal and restore this machine.")
def rehearse_command(stack: str, vm_names: tuple[str, ...], take_down: bool) -> None:
    """Rehearse a site on this machine before touching hardware: its hosts (names, addresses, SSH user and port) as
    podman hosts or virtual machines, its in-country services as local stand-ins, then exactly the converge
    `pulumi up` runs and `sovkit verify`. Prints every substitution, the compliance verdict and the time of each
    phase."""
    from sovkit.bundle.build import BundleError
    from sovkit.converge import ConvergeError
    from sovkit.hosts import HostsError
    from sovkit.rehearse.plan import PlanError
    from sovkit.rehearse.run import down, rehearse

    site = load_site(stack)
    if site.infrastructure.provider == "local":
        if vm_names:
            errors.print(f"{site.source}: --vm: the local site's hosts run on this machine; a VM rehearses a site "
                         "of its own (onprem or openstack)", markup=False)
            raise SystemExit(2)
        from sovkit.local.cli import down_command, up_command

        console.print("the local site runs on this machine already: its rehearsal is `sovkit up --stack local`",
                      markup=False)
        command = down_command if take_down else up_command
        command.main(args=["--stack", stack], standalone_mode=False)
        return
    try:
        if take_down:
            done = down(site, _progress)
            console.print(f"{site.name} rehearsal is down: " + ("; ".join(done) if done else "nothing was running"),
                          markup=False)
            return
        result = rehearse(site, _progress, vm_names)
    except (ConvergeError, BundleError, HostsError, PlanError) as err:
        errors.print(str(err), markup=False)
        raise SystemExit(1) from None
    console.print(f"\n[bold]{site.name} rehearsed: {'ok' if result.ok else 'FAILED'}[/bold]")
    console.print("  substitutions:", markup=False)
    for line in result.substitutions:
        console.print(f"    {line}", markup=False)
    for line in result.not_stood_up:
        console.print(f"    named, not stood up: {line}", markup=False)
    for label, run in (("converge", result.converge), ("again", result.converge_again)):
        changed = ", ".join(f"{h} {n}" for h, n in sorted(run.changed.items()))
        console.print(f"  {label:<14}changed per host: {changed} (log: {run.log})", markup=False)
    console.print(f"  compliance    {result.report} ({result.verdict.headline})", markup=False)
    for line in result.checks:
        console.print(f"  check         {line}", markup=False)
    for line in result.failures:
        console.print(f"  [red]FAILED[/red]        {line}")
    console.print(f"  record        {result.record}", markup=False)
    console.print("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()), markup=False)
    console.print(f"  remove it:    sovkit rehearse {stack} --down", markup=False)
    raise SystemExit(0 if result.ok else 1)
