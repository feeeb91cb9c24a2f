"""`sovkit bundle STACK [--verify]` (a click command; the main CLI registers it)."""

from __future__ import annotations

from pathlib import Path

import click

from sovkit.bundle.build import BundleError, build_bundle, default_bundle_dir
from sovkit.bundle.manifest import verify as verify_manifest
from sovkit.clitools import console, errors, load_site
from sovkit.hosts import HostsError


@click.command()
@click.argument("stack")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Bundle folder.  [default: .sovkit/<site>/bundle]")
@click.option("--verify", "verify_only", is_flag=True, help="Only check an existing bundle against its manifest.")
def bundle(stack: str, output: Path | None, verify_only: bool) -> None:
    """Assemble the offline bundle of STACK: the apt packages, the serving runtime's wheels, the models the
    kit makes, the chart and its values, and a manifest with the sha256 of every file."""
    site = load_site(stack)
    root = output or default_bundle_dir(site)
    if verify_only:
        try:
            result = verify_manifest(root)
        except (FileNotFoundError, ValueError) as err:
            errors.print(str(err), markup=False)
            raise SystemExit(2) from None
        (console if result.ok else errors).print(result.report(), markup=False)
        raise SystemExit(0 if result.ok else 1)
    try:
        built = build_bundle(site, root, progress=lambda line: console.print(f"  {line}", markup=False))
    except (BundleError, HostsError) as err:
        errors.print(str(err), markup=False)
        raise SystemExit(1) from None
    phases = ", ".join(f"{name} {s:.1f} s" for name, s in built.seconds.items())
    console.print(f"bundle of {site.name}: {len(built.manifest['files'])} files, {built.bytes / 2**20:.0f} MiB in "
                  f"{built.root} ({phases})", markup=False)
    if built.manifest.get("driver"):
        console.print(f"  the accelerator driver comes from {built.manifest['driver']}", markup=False)
    if built.manifest.get("verifier_image"):
        console.print(f"  build images/model-verifier and push it as {built.manifest['verifier_image']} before "
                      "`pulumi up`: the signed models' pods verify their weights with it (docs/pulumi.md)",
                      markup=False)
