"""stacks/__main__.py itself, as `pulumi up` runs it, for every shipped stack."""

from __future__ import annotations

import json

import pytest

from sovkit.config import load_stack
from sovkit.config.schema import PROJECT
from sovkit.infra.testing import ROOT, run_program, stack_environment, stack_names


@pytest.mark.parametrize("stack", stack_names())
def test_main_program(stack, sovkit_values):
    site = load_stack(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
    run = run_program(stack)
    assert run.outputs["site"]["name"] == stack
    assert set(run.outputs["nodes"]) == {n.name for n in site.nodes}
    assert ("kubeconfig" in run.secret_outputs) == (site.platform.mode == "kubernetes")
    releases = {r.name: r for r in run.mocks.of_type("kubernetes:helm.sh/v3:Release")}
    if site.platform.mode == "kubernetes":
        assert releases[f"{stack}-serving"].plain("values") == sovkit_values(stack)
    else:
        assert releases == {}


def test_main_program_stops_on_a_config_error_with_the_validate_message():
    config, secret_keys, _ = stack_environment(ROOT / "stacks" / "Pulumi.local.yaml")
    config[f"{PROJECT}:mode"] = "kubernetes"
    config[f"{PROJECT}:adminCidrs"] = json.dumps(["0.0.0.0/0 "])
    with pytest.raises(Exception, match=r"stacks/Pulumi\.local\.yaml: \d+ problems?; nothing was changed"):
        run_program("local", config=config, secret_keys=secret_keys)



def test_main_program_stops_when_a_model_does_not_fit_with_the_values_message(monkeypatch):
    """A model the planner cannot place (PlanError, as `sovkit values` reports it) stops `pulumi up` with the
    stack file, the model and the way out named. Validation rejects every such stack file found so far, so the
    renderer is made to refuse here."""
    from sovkit.infra import program
    from sovkit.render.vllm_args import PlanError

    def refuse(site):
        raise PlanError("qwen2-5-14b: needs 2 GPUs per replica, 0 free")

    monkeypatch.setattr(program, "render_values", refuse)
    with pytest.raises(Exception, match=r"(?s)stacks/Pulumi\.za-national-dc\.yaml: qwen2-5-14b: needs 2 GPUs.*"
                                        r"sovkit plan za-national-dc.*Nothing was changed"):
        run_program("za-national-dc")
