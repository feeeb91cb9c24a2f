"""Chart values rendered from sites, and the ci/ scenarios kept in step with them."""

from __future__ import annotations

import pytest
import yaml

from sovkit.render.values import dump_values, render_values, split_source
from sovkit.render.vllm_args import render_vllm
from sovkit.serving import CHART_DIR
from sovkit.serving.scenarios import SCENARIOS, scenario_text
from sovkit.stacks import project_root

ROOT = project_root()


def test_split_source():
    assert split_source("s3://models.dc.gov.example/sovkit/qwen") == ("s3://sovkit/qwen", "https://models.dc.gov.example")
    assert split_source("https://store.gov.example/m") == ("https://store.gov.example/m", "")


def test_za_values(stacks):
    site = stacks["za-national-dc"]
    values = render_values(site)
    assert values["imageRegistry"] == "registry.dc.gov.example/sovkit"
    assert values["accelerator"] == "nvidia"
    assert values["modelStore"]["s3Endpoint"] == "https://models.dc.gov.example"
    assert values["modelStore"]["cidrs"] == site.residency.in_country_cidrs
    qwen = values["models"]["qwen2-5-14b"]
    assert qwen["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert qwen["replicas"] == 2 and qwen["nodesPerReplica"] == 1
    # the chart serves exactly what the renderer says (on the pod's address)
    assert qwen["args"] == render_vllm(site, "qwen2-5-14b", host="0.0.0.0", port=8000).args
    assert qwen["apiKeySecret"] == {"name": "sovkit-vllm-qwen2-5-14b", "key": "api-key"}
    assert all(m["env"]["VLLM_NO_USAGE_STATS"] == "1" for m in values["models"].values())


def test_path_store_uses_a_claim(stacks):
    values = render_values(stacks["in-mh-pune"])
    assert values["modelStore"]["existingClaim"] == "sovkit-models"
    assert values["models"]["sarvam-1"]["resources"]["limits"] == {"memory": "21Gi", "nvidia.com/gpu": 1}


def test_cpu_resources(stacks):
    qwen = render_values(stacks["br-ministerio-cpu"])["models"]["qwen2-5-1-5b"]
    # RAM: 1.0675 GiB weights + 1 GiB KV cache + 2 GiB runtime = 4.07 -> 5Gi
    assert qwen["resources"] == {"requests": {"cpu": "8", "memory": "5Gi"}, "limits": {"memory": "5Gi"}}
    assert "tolerations" not in qwen


def test_dump_is_yaml_that_reads_back(stacks):
    values = render_values(stacks["id-sulsel-cloud"])
    assert yaml.safe_load(dump_values(values)) == values


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_ci_scenarios_are_current(name):
    """ci/*-values.yaml are generated; regenerate with `python -m sovkit.serving.scenarios`."""
    path = CHART_DIR / "ci" / f"{name}-values.yaml"
    assert path.read_text(encoding="utf-8") == scenario_text(name)


def test_scenarios_cover_what_the_issue_asks():
    files = {p.name for p in (CHART_DIR / "ci").glob("*-values.yaml")}
    assert files == {f"{n}-values.yaml" for n in SCENARIOS}
    accelerators = {yaml.safe_load((CHART_DIR / "ci" / f).read_text())["accelerator"] for f in files}
    assert accelerators == {"nvidia", "amd", "cpu"}
    multi = yaml.safe_load((CHART_DIR / "ci" / "multi-node-values.yaml").read_text())
    assert next(iter(multi["models"].values()))["nodesPerReplica"] == 2
    assert len(yaml.safe_load((CHART_DIR / "ci" / "two-models-values.yaml").read_text())["models"]) == 2


def test_signed_models_carry_their_signature_in_the_store_and_their_signer():
    from sovkit.serving.scenarios import scenario_site

    site = scenario_site("signed")
    models = render_values(site)["models"]
    pem = (ROOT / "stacks" / "keys" / "sovkit-tiny-model.pem").read_text()
    assert models["llama-3-1-8b"]["signature"] == "s3://sovkit/llama-3.1-8b-instruct-fp8/model.sig"  # the fetcher's
    assert models["llama-3-1-8b"]["signer"] == models["mistral-nemo"]["signer"] == pem
    assert "signature" not in models["qwen2-5-14b"] and "signer" not in models["qwen2-5-14b"]


def test_a_path_stores_signature_is_read_in_the_claim(stacks):
    from sovkit.render.values import signed

    site = stacks["in-mh-pune"]
    spec = site.serving.models["llama-3-1-8b"].model_copy(
        update={"signature": "model.sig", "signer": "stacks/keys/sovkit-tiny-model.pem"})
    assert signed(spec, site.residency.model_store, path_store=True)["signature"] == \
        "/models/llama-3.1-8b-instruct-awq/model.sig"
    assert signed(site.serving.models["sarvam-1"], site.residency.model_store, path_store=True) == {}
