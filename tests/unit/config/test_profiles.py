"""Country profiles cite their laws completely and never invent a value the law leaves to the operator."""

import pytest

from sovkit.config.profiles import REQUIRED_CLAUSES, load_profile, profile_ids

EXPECTED = {"in": "DPDP", "za": "POPIA", "br": "LGPD", "ke": "Data Protection Act", "id": "27"}


def test_the_five_profiles_of_the_first_users_ship():
    assert set(EXPECTED) <= set(profile_ids())


@pytest.mark.parametrize("profile_id", profile_ids())
def test_profile_is_complete_and_cites_sections(profile_id: str):
    profile = load_profile(profile_id)
    assert profile.id == profile_id and profile.country == profile_id.upper()
    for clause_id in REQUIRED_CLAUSES:
        clause = profile.clauses[clause_id]
        assert clause.section.strip() and clause.section in clause.cite, (clause_id, clause.cite)
        assert len(clause.summary) > 40
    for name, default in profile.defaults.model_dump().items():
        if default["set_by"] == "operator":
            assert default["clause"] is None and default["minimum"] is None, name
        else:
            assert default["clause"] in profile.clauses, name


@pytest.mark.parametrize(("profile_id", "law"), EXPECTED.items())
def test_profile_names_its_law(profile_id: str, law: str):
    profile = load_profile(profile_id)
    assert law in f"{profile.law.short_name} {profile.law.title}"


def test_unknown_profile_is_a_key_error():
    with pytest.raises(KeyError):
        load_profile("xx")
