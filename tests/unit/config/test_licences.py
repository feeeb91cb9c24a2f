"""The licence policy: what each catalogue licence allows, the rule that refuses a model whose licence does not allow a
use the site serves, and the waivers a site relies on (what the evidence pack records)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from license_expression import get_spdx_licensing

from sovkit.config import load_stack
from sovkit.config.catalogue import catalogue
from sovkit.config.licences import check_licences, licence_waivers, licences
from sovkit.config.schema import LicenceWaiver
from sovkit.stacks import project_root

STACKS = project_root() / "stacks"


@pytest.fixture(scope="module")
def pune():
    return load_stack(STACKS / "Pulumi.in-mh-pune.yaml")


def with_uses(site, uses: list[str], **model_updates: dict):
    models = {name: spec.model_copy(update=model_updates.get(name, {})) for name, spec in site.serving.models.items()}
    return replace(site, serving=site.serving.model_copy(update={"served_uses": uses, "models": models}))


def test_licence_ids_are_spdx_where_spdx_lists_the_licence():
    spdx = get_spdx_licensing()
    for licence in licences().values():
        errors = spdx.validate(licence.id).errors
        if licence.spdx:
            assert errors == [], licence.id
        else:  # SPDX's form for a licence it does not list
            assert re.fullmatch(r"LicenseRef-[A-Za-z0-9.-]+", licence.id) and errors, licence.id
        assert licence.url.startswith("https://") and licence.uses


def test_every_catalogue_licence_is_known():
    assert {entry.licence for entry in catalogue().values()} <= set(licences())
    assert licences()["CC-BY-NC-4.0"].uses == ("research",)
    assert licences()["LicenseRef-Sarvam-AI-Research-License"].uses == ("research",)


def test_a_waived_model_passes_and_its_waiver_is_there_for_the_evidence(pune):
    """in-mh-pune serves sarvam-1 (a research licence) to the public under a waiver: validate accepts it, and the
    waiver comes out whole for the evidence pack."""
    assert list(check_licences(pune, frozenset())) == []
    [waiver] = licence_waivers(pune)
    assert waiver == {
        "model": "sarvam-1", "catalogue": "sarvam-1", "licence": "LicenseRef-Sarvam-AI-Research-License",
        "licence_url": "https://huggingface.co/sarvamai/sarvam-1/blob/main/LICENSE.md", "licence_uses": ["research"],
        "waived_uses": ["public-service"], "justification": waiver["justification"],
        "approver": "Legal Adviser, Directorate of Information Technology"}
    assert waiver["justification"].startswith("Citizen services under the licence the directorate obtained")


def test_without_the_waiver_the_model_is_refused(pune):
    site = with_uses(pune, ["public-service"], **{"sarvam-1": {"licence_waiver": None}})
    [problem] = check_licences(site, frozenset())
    assert problem.key_path == "sovereign-ai:models.sarvam-1.catalogue"
    assert "LicenseRef-Sarvam-AI-Research-License, which allows research" in problem.found
    assert licence_waivers(site) == []


def test_the_uses_decide(pune):
    """The same model is fine on a research site (its waiver then waives nothing, and is refused), and a commercial
    use is checked for every model."""
    research = with_uses(pune, ["research"], **{"sarvam-1": {"licence_waiver": None}})
    assert list(check_licences(research, frozenset())) == []
    [stale] = check_licences(with_uses(pune, ["research"]), frozenset())
    assert stale.key_path == "sovereign-ai:models.sarvam-1.licenceWaiver"
    waived = with_uses(pune, ["public-service", "commercial"])
    assert licence_waivers(waived)[0]["waived_uses"] == ["public-service", "commercial"]
    assert list(check_licences(waived, frozenset())) == []  # Llama 3.1's licence allows both


@pytest.mark.parametrize(("justification", "approver"), [
    ("  ", "Legal Adviser"),
    ("Approved by the legal cell under the publisher's separate licence.", " "),
    ("Too short to say why.", "Legal Adviser"),
    ("Approved by the legal cell under the publisher's  separate licence.", "Legal Adviser"),
])
def test_a_waiver_states_why_and_who(justification, approver):
    with pytest.raises(ValueError):
        LicenceWaiver(justification=justification, approver=approver)
