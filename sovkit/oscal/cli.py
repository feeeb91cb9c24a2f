"""The `sovkit oscal` command (registered in sovkit.cli with ``main.add_command(oscal)``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from sovkit.clitools import console, errors
from sovkit.oscal.common import TRESTLE_VERSION, OscalError
from sovkit.oscal.write import write_definitions
from sovkit.verify.runner import kit_version

DEFAULT_DIR = Path("oscal")


@click.command("oscal")
@click.option("--output-dir", "-o", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DIR,
              show_default=True, help="Where the OSCAL JSON files are written.")
def oscal(output_dir: Path) -> None:
    """Write the kit's OSCAL catalogues and component definition, without checking any host: the kit's controls
    (catalog-sovkit-controls.json), each country profile's clauses (catalog-<profile>-clauses.json) and how the
    roles implement them (component-definition.json), each validated by compliance-trestle first. `sovkit verify`
    writes the same files, with the run's assessment-results.json, into the oscal/ folder of its output."""
    try:
        written = write_definitions(output_dir, kit_version(), dt.datetime.now(dt.UTC).replace(microsecond=0))
    except (OscalError, FileNotFoundError) as err:
        errors.print(str(err), markup=False)
        raise SystemExit(1) from None
    for path in written:
        console.print(f"  {path} ({path.stat().st_size // 1024} KiB)", markup=False)
    console.print(f"{len(written)} OSCAL documents, validated by compliance-trestle {TRESTLE_VERSION}, in "
                  f"{output_dir}", markup=False)
