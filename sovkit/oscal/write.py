"""Writing the documents: the kit's catalogues and component definition, and a verify run's assessment results
next to them (each validated by trestle first, sovkit.oscal.common.validated_json)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sovkit.config.profiles import load_profile, profile_ids
from sovkit.oscal.catalogues import clauses_catalogue, controls_catalogue
from sovkit.oscal.common import (
    ASSESSMENT_RESULTS,
    COMPONENT_DEFINITION,
    CONTROLS_CATALOGUE,
    clauses_catalogue_file,
    write_document,
)
from sovkit.oscal.component import component_definition
from sovkit.oscal.results import assessment_results, run_times
from sovkit.oscal.roles import control_tasks
from sovkit.stacks import project_root
from sovkit.verify.report import Report, load_controls

OSCAL_DIR = "oscal"  # under `sovkit verify`'s output folder


def write_definitions(out_dir: Path, kit_version: str, last_modified: dt.datetime,
                      roles_dir: Path | None = None) -> list[Path]:
    """The kit's controls catalogue, every shipped profile's clause catalogue and the component definition that
    draws on them; ``roles_dir`` defaults to the checkout's roles/."""
    controls = load_controls()
    profiles = [load_profile(pid) for pid in profile_ids()]
    tasks = control_tasks(roles_dir or project_root() / "roles")
    written = [write_document(controls_catalogue(controls, kit_version, last_modified), out_dir / CONTROLS_CATALOGUE)]
    written += [write_document(clauses_catalogue(p, kit_version, last_modified), out_dir / clauses_catalogue_file(p.id))
                for p in profiles]
    written.append(write_document(component_definition(controls, profiles, tasks, kit_version, last_modified),
                                  out_dir / COMPONENT_DEFINITION))
    return written


def write_run_documents(report: Report, out_dir: Path, roles_dir: Path | None = None) -> list[Path]:
    """The run's assessment results and the definitions they point to, dated by the run's end (so writing the same
    run again gives the same files)."""
    _, ended = run_times(report)
    written = write_definitions(out_dir, report.kit_version, ended, roles_dir)
    written.append(write_document(assessment_results(report), out_dir / ASSESSMENT_RESULTS))
    return written
