"""The kit as an OSCAL component: how its roles implement each of its controls, and which controls evidence each
clause of each country's law. One control implementation per catalogue it draws on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from trestle.oscal.common import Link
from trestle.oscal.component import ComponentDefinition, ControlImplementation, DefinedComponent, ImplementedRequirement

from sovkit.config.profiles import CountryProfile
from sovkit.oscal.common import CONTROLS_CATALOGUE, clauses_catalogue_file, metadata, prop, stable_uuid
from sovkit.oscal.roles import RoleTask


def component_definition(controls: Mapping[str, Mapping[str, Any]], profiles: Sequence[CountryProfile],
                         tasks: Mapping[str, list[RoleTask]], kit_version: str,
                         last_modified: dt.datetime) -> ComponentDefinition:
    """``tasks``: {control id: the role tasks implementing it} (sovkit.oscal.roles.control_tasks)."""
    implementations = [_controls_implementation(controls, tasks, kit_version)]
    implementations += [impl for profile in profiles if (impl := _clauses_implementation(profile, controls,
                                                                                         kit_version))]
    sovkit = DefinedComponent(
        uuid=stable_uuid("component", "sovkit", kit_version), type="software", title="sovkit",
        description="Sovereign AI site kit: Ansible roles harden the hosts and keep data in the country; its "
                    "compliance suite (sovkit/compliance, run by `sovkit verify`) checks each control on live hosts.",
        props=[prop("version", kit_version)], control_implementations=implementations)
    return ComponentDefinition(
        uuid=stable_uuid("component-definition", "sovkit", kit_version),
        metadata=metadata("sovkit component definition", kit_version, last_modified),
        components=[sovkit])


def _controls_implementation(controls: Mapping[str, Mapping[str, Any]], tasks: Mapping[str, list[RoleTask]],
                             kit_version: str) -> ControlImplementation:
    return ControlImplementation(
        uuid=stable_uuid("implementation", "sovkit-controls", kit_version), source=CONTROLS_CATALOGUE,
        description="Each control is applied by the Ansible tasks named and tagged with its id (run "
                    "`ansible-playbook playbooks/site.yml --tags <id>` to apply one alone).",
        implemented_requirements=[_control_requirement(cid, c, tasks.get(cid, []), kit_version)
                                  for cid, c in controls.items()])


def _control_requirement(cid: str, control: Mapping[str, Any], tasks: list[RoleTask],
                         kit_version: str) -> ImplementedRequirement:
    files = sorted({t.file for t in tasks})
    how = (f"Role {control['role']}, tag {cid}: " + "; ".join(f"roles/{t.file}: {t.name}" for t in tasks)
           if tasks else f"Role {control['role']}: no task of roles/ is named or tagged {cid}.")
    return ImplementedRequirement(
        uuid=stable_uuid("requirement", "sovkit-controls", cid, kit_version), control_id=cid, description=how,
        props=[prop("role", control["role"]), prop("task-tag", cid),
               *(prop("task-file", f"roles/{f}") for f in files),
               *(prop("cis-debian12", item) for item in control.get("cis") or []),
               *(prop("clause", clause) for clause in control.get("clauses") or [])])


def _clauses_implementation(profile: CountryProfile, controls: Mapping[str, Mapping[str, Any]],
                            kit_version: str) -> ControlImplementation | None:
    """The clauses of the profile some control evidences (None if none does); a clause no control names is left out,
    as `sovkit verify` reports it not evidenced."""
    evidencing = {clause: sorted(cid for cid, c in controls.items() if clause in (c.get("clauses") or []))
                  for clause in profile.clauses}
    requirements = [
        ImplementedRequirement(
            uuid=stable_uuid("requirement", profile.id, clause, kit_version), control_id=clause,
            description=f"{profile.clauses[clause].cite} is evidenced by the checks of {', '.join(cids)}.",
            props=[prop("evidenced-by", cid) for cid in cids],
            links=[Link(href=f"{CONTROLS_CATALOGUE}#{cid}", rel="related") for cid in cids])
        for clause, cids in evidencing.items() if cids]
    if not requirements:
        return None
    return ControlImplementation(
        uuid=stable_uuid("implementation", profile.id, kit_version), source=clauses_catalogue_file(profile.id),
        description=f"{profile.law.short_name} ({profile.country_name}): the clauses the kit's controls evidence.",
        props=[prop("profile", profile.id)], implemented_requirements=requirements)
