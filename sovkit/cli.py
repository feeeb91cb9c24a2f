"""The `sovkit` command line. `run(argv=None)` is the one entry point (tests call it too)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import yaml
from rich.markup import escape

from sovkit.bundle.cli import bundle
from sovkit.bundle.manifest import MANIFEST
from sovkit.clitools import console, errors, load_site
from sovkit.config import PROJECT, load_stack
from sovkit.config.loader import FROM_STACK, key_index
from sovkit.errors import StackError, redact
from sovkit.evidence.cli import evidence
from sovkit.gate.cli import gate
from sovkit.local.cli import down_command, up_command
from sovkit.models.cli import model
from sovkit.oscal.cli import oscal
from sovkit.rehearse.cli import rehearse_command
from sovkit.render.bom import bom_document, gate_evaluations
from sovkit.render.gate import read_reports
from sovkit.render.inventory import inventory_yaml
from sovkit.scaffold import ScaffoldError, scaffold
from sovkit.serving.cli import catalogue_command, plan, values
from sovkit.stacks import find_stack, stack_files, stack_path
from sovkit.usage.cli import usage
from sovkit.verify.cis import CoverageError, coverage, summary
from sovkit.verify.cli import verify
from sovkit.verify.report import load_controls
from sovkit.workspace import SiteWorkspace


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sovkit")
def main() -> None:
    """sovkit: one stack file per site becomes hardened machines, served models and compliance evidence."""


@main.command()
@click.argument("stacks", nargs=-1)
def validate(stacks: tuple[str, ...]) -> None:
    """Validate stack files (all of stacks/ when none is named). Exit 1 on any problem."""
    try:
        paths = [find_stack(s) for s in stacks] if stacks else stack_files()
    except FileNotFoundError as err:
        errors.print(str(err), markup=False)
        raise SystemExit(2) from None
    failed = 0
    started = time.perf_counter()
    for path in paths:
        try:
            site = load_stack(path)
        except StackError as err:
            failed += 1
            errors.print(f"[red]✗[/red] {path}", markup=True)
            errors.print(str(err), markup=False)
            continue
        console.print(f"[green]✓[/green] {path}  ({site.name}, {site.site.country}, {site.profile.law.short_name}, "
                      f"{site.infrastructure.provider}/{site.platform.mode}/{site.accelerator.accelerator}, "
                      f"{len(site.nodes)} nodes, {len(site.serving.models)} models)")
    elapsed = time.perf_counter() - started
    console.print(f"{len(paths) - failed} valid, {failed} invalid, in {elapsed:.2f} s")
    if failed or not paths:
        raise SystemExit(1)


@main.command()
@click.argument("stack", required=False)
@click.option("--controls", "controls", is_flag=True,
              help="The kit's controls and its CIS Debian 12 Level 1 Server mapping, instead of a site.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(stack: str | None, controls: bool, as_json: bool) -> None:
    """The resolved config of a site, with where each value came from; or, with --controls, the kit's controls and
    how they cover the CIS Debian 12 benchmark (the same for every site)."""
    if controls:
        if stack:
            raise click.UsageError(f"--controls shows the kit's controls, the same for every site; drop {stack!r}, "
                                   f"or run `sovkit show {stack}` for the site")
        _show_controls(as_json)
        return
    if not stack:
        raise click.UsageError("show needs a STACK (a stack file or site name), or --controls for the kit's "
                               "controls and CIS mapping")
    site = load_site(stack)
    rows = []
    for name, (section, field) in key_index().items():
        value = getattr(getattr(site, section), field)
        rows.append((section, f"{PROJECT}:{name}", _redacted(_plain(value)),
                     site.provenance.get(f"{PROJECT}:{name}", "")))
    if as_json:
        click.echo(json.dumps({"site": site.name, "source": site.source, "profile": site.profile.id,
                               "values": [{"section": s, "key": k, "value": v, "from": f} for s, k, v, f in rows]},
                              indent=2, default=str))
        return
    law = site.profile.law
    console.print(f"[bold]{site.name}[/bold] ({site.source}): {site.profile.country_name}, {law.title} "
                  f"({law.short_name}); regulator: {law.regulator}")
    for section in dict.fromkeys(r[0] for r in rows):
        console.print(f"\n[bold]{section}[/bold]")
        for _, key, value, origin in (r for r in rows if r[0] == section):
            if value in (None, {}, []) and origin != FROM_STACK:
                continue
            text = yaml.safe_dump({key: value}, sort_keys=False, width=100, allow_unicode=True).rstrip()
            first, *rest = text.splitlines()
            console.print(f"  {first}  [dim]# {origin}[/dim]")
            for line in rest:
                console.print(f"  {line}", markup=False)
    console.print("\n[bold]clauses the compliance checks cite[/bold]")
    for cid, clause in site.profile.clauses.items():
        console.print(f"  {cid}: {clause.cite} ({clause.title})", markup=False)


def _show_controls(as_json: bool) -> None:
    """`show --controls`: the control catalogue, then each CIS Level 1 Server item with its status and a count."""
    try:
        items = coverage()
    except CoverageError as err:
        errors.print(str(err), markup=False)
        raise SystemExit(1) from None
    catalogue = [{"id": cid, "title": c["title"], "cis": list(c.get("cis") or [])}
                 for cid, c in load_controls().items()]
    level1 = [i for i in items if i.level == 1]
    also_level2 = [i for i in items if i.level == 2 and i.status == "implemented"]
    counts = summary(items)
    if as_json:
        click.echo(json.dumps({"benchmark": "CIS Debian Linux 12 Benchmark v1.1.0", "profile": "Level 1 Server",
                               "controls": catalogue, "items": [i.to_dict() for i in level1],
                               "level2_implemented": [i.to_dict() for i in also_level2], "summary": counts},
                              indent=2))
        return
    console.print("[bold]sovkit controls[/bold] (sovkit/data/controls.yaml)")
    for c in catalogue:
        console.print(f"  {c['id']:<13} {c['title']}", markup=False)
        console.print(f"  {'':<13} CIS {', '.join(c['cis']) or '(none: a residency control)'}", style="dim",
                      markup=False)
    console.print("\n[bold]CIS Debian Linux 12 Benchmark v1.1.0, Level 1 Server[/bold] "
                  "(sovkit/data/cis_debian12.yaml; implemented = cited by a control above)")
    colour = {"implemented": "green", "waived": "yellow", "out of scope": "cyan"}
    first_with = {}  # reason -> the first item giving it: a shared reason is printed once
    for item in level1:
        by = ", ".join(item.controls)
        console.print(f"  {item.id:<10} [{colour[item.status]}]{item.status:<13}[/]{by + '  ' if by else ''}"
                      f"{escape(item.title)}")
        if item.reason:
            why = f"as for {first_with[item.reason]}" if item.reason in first_with else item.reason
            first_with.setdefault(item.reason, item.id)
            console.print(f"  {'':<10} {'':<13}why: {why}", style="dim", markup=False)
    if also_level2:
        console.print("\nLevel 2 items the kit also implements: "
                      + ", ".join(f"{i.id} ({', '.join(i.controls)})" for i in also_level2), markup=False)
    console.print(f"\nLevel 1 Server: {counts['implemented']} implemented, {counts['waived']} waived, "
                  f"{counts['out_of_scope']} out of scope, of {counts['total']} items")


def _plain(value: object) -> object:
    """Config values as plain data, with the stack file's key names; unset optional fields left out."""
    if hasattr(value, "model_dump"):
        return value.model_dump(by_alias=True, exclude_none=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _redacted(value: object) -> object:
    """A value as `show` prints it: every credential in a URL replaced (sovkit.errors.redact), at any depth."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


@main.command("new-site")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. GH.")
@click.option("--name", required=True, help="Site name: lower-case letters, digits and '-'.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stacks/Pulumi.NAME.yaml")
def new_site(country: str, name: str, output: Path | None) -> None:
    """Scaffold a stack file with TODO markers that `validate` reports until they are filled."""
    target = output or stack_path(name)
    try:
        text = scaffold(country=country, name=name)
    except ScaffoldError as err:
        errors.print(str(err), markup=False)
        raise SystemExit(2) from None
    if target.exists():
        errors.print(f"{target} exists already; nothing was written (choose another --name or --output)")
        raise SystemExit(2)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    todos = text.count('"TODO')
    console.print(f"wrote {target} with {todos} TODO markers; fill them, then run: sovkit validate {target}")


@main.command()
@click.argument("stack")
def inventory(stack: str) -> None:
    """The Ansible inventory and group vars of a site (YAML on stdout)."""
    click.echo(inventory_yaml(load_site(stack)), nl=False)


@main.command()
@click.argument("stack")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write it here, not to stdout.")
@click.option("--bundle", "bundle_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The offline bundle to list (default: the site's, .sovkit/SITE/bundle, when it has a manifest).")
def bom(stack: str, output: Path | None, bundle_dir: Path | None) -> None:
    """The site's AI bill of materials: a CycloneDX 1.6 ML-BOM of its models (revision, digest, licence,
    languages, quantization, signer, the quality gate's results), its serving runtime and its offline bundle."""
    site = load_site(stack)
    manifest = (bundle_dir or SiteWorkspace.of(site.name).bundle) / MANIFEST
    if bundle_dir is not None and not manifest.is_file():
        errors.print(f"{manifest}: no bundle manifest here; build it with `sovkit bundle {stack}`", markup=False)
        raise SystemExit(2)
    evaluations = gate_evaluations(site, read_reports(site, SiteWorkspace.of(site.name).gate))
    document = bom_document(site, evaluations=evaluations,
                            bundle_manifest=manifest.read_bytes() if manifest.is_file() else None)
    if output is None:
        click.echo(document, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document, encoding="utf-8")
    listed = "its bundle" if manifest.is_file() else "no bundle (none built)"
    console.print(f"wrote {output}: CycloneDX 1.6 ML-BOM of {site.name}, {len(site.serving.models)} models, "
                  f"the serving runtime and {listed}", markup=False)


@main.command("converge")
@click.argument("stack")
def converge_command(stack: str) -> None:
    """Bring a site's hosts to the stack's state without Pulumi: the same converge `pulumi up` runs (render the
    inventory, make the tenants' key hashes and the gateway's key, check the run, then playbooks/site.yml)."""
    from sovkit.converge import ConvergeError, converge

    site = load_site(stack)
    try:
        result = converge(site, progress=lambda line: console.print(line, markup=False))
    except ConvergeError as err:
        errors.print(str(err), markup=False)
        raise SystemExit(1) from None
    changed = ", ".join(f"{host} {count}" for host, count in sorted(result.changed.items()))
    console.print(f"{site.name} converged in {result.seconds:.0f} s; changed per host: {changed}; "
                  f"log: {result.log}; next: sovkit verify {stack}", markup=False)
    for line in result.gate.lines() if result.gate else []:
        console.print(line, markup=False)


main.add_command(rehearse_command)
main.add_command(bundle)
main.add_command(plan)
main.add_command(catalogue_command)
main.add_command(values)
main.add_command(verify)
main.add_command(evidence)
main.add_command(up_command)
main.add_command(down_command)
main.add_command(usage)
main.add_command(oscal)
main.add_command(model)
main.add_command(gate)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status instead of exiting (for tests and the console script)."""
    try:
        main.main(args=argv, prog_name="sovkit", standalone_mode=False)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Abort:
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
