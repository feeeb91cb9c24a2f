"""The controls' clause lists (sovkit/data/controls.yaml) name clauses of the country profiles, and each profile's
data-localisation clauses are evidenced by the residency controls, so s. 50 of Kenya's DPA is never "not evidenced"
for want of a mapping."""

from __future__ import annotations

import pytest

from sovkit.config.profiles import load_profile, profile_ids
from sovkit.verify.report import load_controls

CONTROLS = load_controls()
# The profiles' data-localisation clauses: processing or storage required to stay in the country.
LOCALISATION = {"ke": {"data_localisation", "data_localisation_purposes"}, "id": {"data_localisation"}}
# Egress restricted to the country, and the in-country resolvers, time servers and package mirror.
RESIDENCY = {"SOV-NET-003", "SOV-NET-004", "SOV-DNS-001", "SOV-DNS-002", "SOV-TIME-001", "SOV-OS-009"}


def test_every_clause_a_control_names_is_a_clause_of_some_profile():
    known = {clause for pid in profile_ids() for clause in load_profile(pid).clauses}
    unknown = {cid: sorted(set(c["clauses"]) - known) for cid, c in CONTROLS.items() if set(c["clauses"]) - known}
    assert unknown == {}


def test_the_localisation_clauses_are_those_the_profiles_hold():
    """A profile that gains or renames a localisation clause must be named here, and so mapped."""
    held = {pid: {c for c in load_profile(pid).clauses if "localisation" in c} for pid in profile_ids()}
    assert {pid: clauses for pid, clauses in held.items() if clauses} == LOCALISATION


@pytest.mark.parametrize(("profile_id", "clause"), sorted((p, c) for p, cs in LOCALISATION.items() for c in cs))
def test_each_localisation_clause_is_evidenced_by_every_residency_control(profile_id: str, clause: str):
    assert clause in load_profile(profile_id).clauses
    mapped = {cid for cid, c in CONTROLS.items() if clause in c["clauses"]}
    assert mapped >= RESIDENCY, f"{profile_id} {clause}: not mapped by {sorted(RESIDENCY - mapped)}"
