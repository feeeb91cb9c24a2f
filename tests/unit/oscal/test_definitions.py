"""The kit's catalogues and component definition, built from the shipped data, are valid OSCAL and complete."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from trestle.oscal.catalog import Catalog
from trestle.oscal.component import ComponentDefinition

from sovkit.config.profiles import load_profile, profile_ids
from sovkit.oscal.catalogues import clauses_catalogue, controls_catalogue
from sovkit.oscal.common import CONTROLS_CATALOGUE, NAMESPACE, OscalError, clauses_catalogue_file, validated_json
from sovkit.oscal.component import component_definition
from sovkit.oscal.roles import control_tasks
from sovkit.stacks import project_root
from sovkit.verify.report import load_controls

WHEN = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
PROFILES = [load_profile(p) for p in profile_ids()]
CONTROLS = load_controls()


def parsed(document, kind):
    """The document as trestle reads it back from the JSON the kit writes."""
    (body,) = json.loads(validated_json(document)).values()
    return kind.parse_obj(body)


def props(item, name: str) -> list[str]:
    return [p.value for p in item.props or [] if p.name == name and p.ns and str(p.ns) == NAMESPACE]


@pytest.fixture(scope="module")
def definition() -> ComponentDefinition:
    tasks = control_tasks(project_root() / "roles")
    return parsed(component_definition(load_controls(), PROFILES, tasks, "0.1.0", WHEN), ComponentDefinition)


def test_controls_catalogue_has_every_control_with_its_cis_items_role_and_clauses():
    catalogue = parsed(controls_catalogue(load_controls(), "0.1.0", WHEN), Catalog)
    by_id = {c.id: c for c in catalogue.controls}
    assert list(by_id) == list(load_controls())
    for cid, control in load_controls().items():
        assert by_id[cid].title == control["title"]
        assert props(by_id[cid], "cis-debian12") == list(control.get("cis") or [])
        assert props(by_id[cid], "clause") == list(control["clauses"])
        assert props(by_id[cid], "role") == [control["role"]]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.id)
def test_each_profile_is_a_catalogue_of_its_clauses(profile):
    catalogue = parsed(clauses_catalogue(profile, "0.1.0", WHEN), Catalog)
    assert {c.id: (props(c, "cite"), c.parts[0].prose) for c in catalogue.controls} == {
        cid: ([clause.cite], clause.summary) for cid, clause in profile.clauses.items()}
    assert profile.law.title in catalogue.metadata.title


def test_the_component_implements_every_control_with_its_tasks_cis_items_and_clauses(definition):
    (sovkit,) = definition.components
    kit = next(i for i in sovkit.control_implementations if i.source == CONTROLS_CATALOGUE)
    by_id = {r.control_id: r for r in kit.implemented_requirements}
    assert list(by_id) == list(load_controls())
    for cid, control in load_controls().items():
        requirement = by_id[cid]
        assert props(requirement, "cis-debian12") == list(control.get("cis") or [])
        assert props(requirement, "clause") == list(control["clauses"])
        assert props(requirement, "task-tag") == [cid]
        assert props(requirement, "task-file"), f"{cid}: no task of roles/ is named or tagged with it"
        assert f"Role {control['role']}, tag {cid}: roles/" in requirement.description


def test_the_component_says_which_controls_evidence_each_clause_of_each_profile(definition):
    (sovkit,) = definition.components
    by_source = {i.source: i for i in sovkit.control_implementations}
    for profile in PROFILES:
        requirements = {r.control_id: props(r, "evidenced-by")
                        for r in by_source[clauses_catalogue_file(profile.id)].implemented_requirements}
        expected = {clause: sorted(cid for cid, c in CONTROLS.items() if clause in c["clauses"])
                    for clause in profile.clauses}
        assert requirements == {clause: cids for clause, cids in expected.items() if cids}


def test_a_document_trestle_rejects_is_not_written():
    catalogue = controls_catalogue(load_controls(), "0.1.0", WHEN)
    catalogue.controls[1].props[0].uuid = catalogue.controls[0].props[0].uuid = catalogue.uuid
    with pytest.raises(OscalError, match="fails trestle's validation"):
        validated_json(catalogue)


def test_a_missing_roles_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "roles")):
        control_tasks(tmp_path / "roles")
