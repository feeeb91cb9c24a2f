"""The `sovkit gate STACK [MODEL ...]` command (registered in sovkit.cli with ``main.add_command(gate)``)."""

from __future__ import annotations

from pathlib import Path

import click

from sovkit.workspace import SiteWorkspace

# Exit codes: 0 every model passed; 1 a model failed (tenants are not to be granted it); 2 nothing was evaluated
# (a bad stack, a set missing or not the one the stack names).
EXIT_FAILED = 1
EXIT_NOT_EVALUATED = 2


@click.command("gate")
@click.argument("stack")
@click.argument("models", nargs=-1)
@click.option("--url", help="The gateway the models are evaluated through, https://HOST:PORT.  [default: the first "
              "serving host's gateway, at the address the stack gives it]")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the gate's API key at the gateway.  [default: the key the rollout made for the "
              "gate's own tenant, .sovkit/<site>/secrets/gate-api-key]")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CA certificate of the gateway's certificate.  [default: the site CA, when there is one]")
@click.option("--store", "store_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The model store as this machine sees it.  [default: the bundle's copy, or modelStore]")
@click.option("--output-dir", "-o", type=click.Path(file_okay=False, path_type=Path),
              help="Where <model>.json reports go.  [default: .sovkit/<site>/gate]")
def gate(stack: str, models: tuple[str, ...], url: str | None, key_file: Path | None, ca_file: Path | None,
         store_dir: Path | None, output_dir: Path | None) -> None:
    """The local-language quality gate: evaluates each model (MODELS, or every model with an evaluation) through the
    gateway with lm-evaluation-harness on the site's own evaluation sets, and judges each language against the
    stack's threshold. Writes one JSON report per model (for the BOM and the evidence); exit 1 when a model fails:
    tenants are not to be granted it."""
    from sovkit.clitools import console, errors, load_site
    from sovkit.converge import gate_key_file
    from sovkit.gate.rollout import gate_endpoint
    from sovkit.gate.run import Endpoint, GateError, default_store_dir, run_gate, write_report
    from sovkit.render.inventory import render_inventory

    site = load_site(stack)
    gated = [m for m, spec in site.serving.models.items() if spec.evaluation is not None]
    unknown = [m for m in models if m not in gated]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not a model of {site.name} with an evaluation "
                                 f"({', '.join(gated) or 'none has one'})", param_hint="MODELS")
    store_dir = store_dir or default_store_dir(site)
    if store_dir is None:
        raise click.UsageError(f"give --store: where this machine reads the model store {site.residency.model_store}")
    workspace = SiteWorkspace.of(site.name)
    key_file = key_file or gate_key_file(workspace)
    if not key_file.is_file():
        raise click.BadParameter(f"{key_file} does not exist: the rollout makes it (`sovkit converge {stack}`, "
                                 "`pulumi up`), or give the file of a key the gateway knows", param_hint="--key-file")
    key = key_file.read_text(encoding="utf-8").strip()
    if not key:
        raise click.BadParameter(f"{key_file} is empty", param_hint="--key-file")
    site_ca = workspace.pki / "ca.crt"
    address = gate_endpoint(site, render_inventory(site, workspace=workspace), workspace, key)
    endpoint = Endpoint(url or address.url, key, ca_file or (site_ca if site_ca.is_file() else None))
    out = output_dir or workspace.gate
    failed = 0
    for served in models or gated:
        try:
            report = run_gate(site, served, endpoint, store_dir, out / served)
        except GateError as err:
            errors.print(f"{served}: not evaluated: {err}", markup=False)
            raise SystemExit(EXIT_NOT_EVALUATED) from None
        failed += not report.passed
        mark = "[green]✓ passed[/green]" if report.passed else "[red]✗ failed[/red]"
        console.print(f"{mark} {served} ({report.revision}) in {report.seconds:.1f} s", markup=True)
        for verdict in report.verdicts:
            console.print(f"    {verdict.reason}", markup=False)
        console.print(f"    report: {write_report(report, out)}", markup=False)
    if failed:
        console.print(f"{failed} model(s) failed the gate: tenants are not to be granted them")
        raise SystemExit(EXIT_FAILED)
