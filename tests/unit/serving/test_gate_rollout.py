"""The quality gate in the rollout, without a model server: what the gateway is told to grant before and after a
verdict, the gate's own tenant, and when the gateway's grants are written again. (The gate in `sovkit up`, against
the local site's real gateway and vLLM, is tests/e2e/test_local_up.py.)"""

from __future__ import annotations

import pytest

from sovkit.config import checks
from sovkit.config.checks import GATE_TENANT
from sovkit.gate.rollout import gate_and_grant
from sovkit.gate.run import write_report
from sovkit.render.gate import GATE_REQUESTS_PER_MINUTE, GateReport, LanguageVerdict, SetScore, withheld_grants
from sovkit.render.gateway import tenant_grants
from sovkit.render.inventory import render_inventory
from sovkit.workspace import SiteWorkspace

GATED = "tiny-chat"


def passing_report(site) -> GateReport:
    spec = site.serving.models[GATED]
    sets = [SetScore(name=n, language=s.language, source=s.source, digest=s.digest, items=30, score=0.0)
            for n, s in spec.evaluation.sets.items()]
    verdicts = [LanguageVerdict(language=lang, score=0.0, threshold=0.0, passed=True,
                                reason=f"{lang}: exact_match 0.00 >= threshold 0.00") for lang in ("en", "sw")]
    return GateReport(site=site.name, model=GATED, catalogue=spec.catalogue, revision=spec.revision,
                      endpoint="https://gw/v1/chat/completions", harness="lm-eval", started="2026-12-03T00:00:00",
                      seconds=4.0, sets=sets, verdicts=verdicts, passed=True)


@pytest.fixture
def workspace(tmp_path) -> SiteWorkspace:
    return SiteWorkspace.of("local", tmp_path)


def test_without_a_report_the_gated_model_is_withheld_and_the_gate_alone_is_granted_it(stacks, workspace):
    site = stacks["local"]
    grants = render_inventory(site, workspace=workspace)["all"]["vars"]["gateway_tenants"]
    assert grants["county-registry"]["models"] == [] and grants["county-registry"]["withheld"] == [GATED]
    assert grants["ministry-health"]["models"] == ["tiny-health"]  # its ungated model stays granted
    assert grants[GATE_TENANT] == {"models": [GATED], "withheld": [], "gate": True, "burst": 100,
                                   "requests_per_minute": GATE_REQUESTS_PER_MINUTE, "retry_after_s": 1}
    # the gateway's own input check accepts a tenant whose every model is withheld, and nothing else empty
    assert checks.grants(grants, list(site.serving.models)) == []
    assert [f.at for f in checks.grants({"t": {"models": [], "requests_per_minute": 1}}, [GATED])] == [".t.models"]
    assert [f.at for f in checks.grants({"t": {"models": [], "withheld": ["other"], "requests_per_minute": 1}},
                                          [GATED])] == [".t.withheld[0]"]
    # a stack tenant may not take the gate's name: refused by validate and by the gateway's check alike
    stack_tenant = {GATE_TENANT: {"models": [GATED], "requests_per_minute": 1}}
    [refused] = checks.grants(stack_tenant, [GATED])
    assert (refused.at, refused.allowed) == (f".{GATE_TENANT}", "a tenant name other than sovkit-gate, which the "
                                             "quality gate's own key at the gateway holds")


def test_a_passing_report_grants_the_stack_as_written(stacks, workspace):
    site = stacks["local"]
    write_report(passing_report(site), workspace.gate)
    grants = render_inventory(site, workspace=workspace)["all"]["vars"]["gateway_tenants"]
    assert {t: g["models"] for t, g in grants.items() if t != GATE_TENANT} == {
        t: list(spec.models) for t, spec in site.serving.tenants.items()}
    assert tenant_grants(site, withheld_grants(site, {GATED: passing_report(site)})) == grants


def test_a_current_passing_report_stands_and_nothing_is_written_again(stacks, workspace):
    site = stacks["local"]
    write_report(passing_report(site), workspace.gate)
    inventory = render_inventory(site, workspace=workspace)
    regranted: list[dict] = []
    rollout = gate_and_grant(site, inventory, workspace, "k" * 48, regrant=regranted.append)
    assert regranted == [] and not rollout.regranted and rollout.withheld == []
    [outcome] = rollout.outcomes
    assert (outcome.model, outcome.passed, outcome.evaluated) == (GATED, True, False)
    assert rollout.lines() == [f"gate: {GATED} passed (its current report stands): "
                               "en: exact_match 0.00 >= threshold 0.00; sw: exact_match 0.00 >= threshold 0.00"]


def test_a_model_that_cannot_be_evaluated_stays_withheld_and_says_why(stacks, workspace):
    """The play rendered the grants of a passing report; the report is gone and the sets are not where the bundle
    should hold them: nothing is evaluated, the model is withheld from its tenants, and the grants are written
    again without it."""
    site = stacks["local"]
    write_report(passing_report(site), workspace.gate)
    inventory = render_inventory(site, workspace=workspace)
    (workspace.gate / f"{GATED}.json").unlink()
    regranted: list[dict] = []
    rollout = gate_and_grant(site, inventory, workspace, "k" * 48, regrant=regranted.append)
    [outcome] = rollout.outcomes
    assert not outcome.passed and not outcome.evaluated
    assert "not evaluated: models.tiny-chat.evaluation.sets.everyday-en:" in outcome.reasons[0]
    assert [granted["all"]["vars"]["gateway_tenants"] for granted in regranted] == [
        render_inventory(site, workspace=workspace)["all"]["vars"]["gateway_tenants"]]
    assert rollout.inventory == regranted[0] and rollout.regranted
    assert sorted(w.tenant for w in rollout.withheld) == sorted(site.tenants_of(GATED))
    assert rollout.lines()[-1] == f"gate: {GATED} is withheld from county-registry, ministry-health, national-library"
    assert inventory["all"]["vars"]["gateway_tenants"]["county-registry"]["models"] == [GATED]  # the caller's kept
