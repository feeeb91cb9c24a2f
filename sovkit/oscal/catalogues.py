"""Two kinds of catalogue: the kit's own controls (sovkit/data/controls.yaml) and, per country profile, the clauses
of its law (sovkit/data/profiles/<id>.yaml). Component definitions and assessment results point into them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from trestle.oscal.catalog import Catalog, Control
from trestle.oscal.common import Link, Part

from sovkit.config.profiles import CountryProfile
from sovkit.oscal.common import metadata, prop, stable_uuid

# The benchmark the controls' `cis` items number (the version sovkit/data/cis_debian12.yaml records).
CIS_BENCHMARK = "CIS Debian Linux 12 Benchmark v1.1.0"


def statement_id(control_id: str) -> str:
    """The id of a control's statement part: what a finding targets (OSCAL's `statement-id`)."""
    return f"{control_id}_smt"


def controls_catalogue(controls: Mapping[str, Mapping[str, Any]], kit_version: str,
                       last_modified: dt.datetime) -> Catalog:
    """Each control with its title as its statement, its role and concern, its CIS items and the clause ids it
    evidences (ids of the country profiles' clause catalogues), and what only a live host proves."""
    return Catalog(
        uuid=stable_uuid("catalog", "sovkit-controls", kit_version),
        metadata=metadata("sovkit controls", kit_version, last_modified,
                          f"The kit's hardening and residency controls (sovkit/data/controls.yaml); `cis-debian12` "
                          f"properties number items of the {CIS_BENCHMARK}."),
        controls=[_kit_control(cid, c) for cid, c in controls.items()],
    )


def _kit_control(cid: str, control: Mapping[str, Any]) -> Control:
    parts = [Part(id=statement_id(cid), name="statement", prose=control["title"])]
    if control.get("live"):
        parts.append(Part(id=f"{cid}_gdn", name="guidance", prose=f"Only a live host proves all of it: "
                                                                  f"{control['live']}"))
    props = [prop("role", control["role"]), prop("concern", control["concern"]),
             *(prop("cis-debian12", item) for item in control.get("cis") or []),
             *(prop("clause", clause) for clause in control.get("clauses") or [])]
    return Control(id=cid, title=control["title"], props=props, parts=parts)


def clauses_catalogue(profile: CountryProfile, kit_version: str, last_modified: dt.datetime) -> Catalog:
    """The clauses of the profile's law the kit's controls evidence, each with its citation and summary."""
    law = profile.law
    return Catalog(
        uuid=stable_uuid("catalog", f"{profile.id}-clauses", kit_version),
        metadata=metadata(f"{law.title} ({law.short_name}): clauses", kit_version, last_modified,
                          f"{profile.country_name}; regulator: {law.regulator}; as sovkit's country profile "
                          f"{profile.id} (sovkit/data/profiles/{profile.id}.yaml) summarises them."),
        controls=[Control(id=cid, title=clause.title,
                          props=[prop("cite", clause.cite), prop("section", clause.section)],
                          links=[Link(href=law.source, rel="reference", text=law.title)],
                          parts=[Part(id=statement_id(cid), name="statement", prose=clause.summary)])
                  for cid, clause in profile.clauses.items()],
    )
