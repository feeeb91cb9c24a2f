"""`sovkit bom`: every shipped site's CycloneDX 1.6 ML-BOM validates against CycloneDX's schema (the library's own
validator), and says of each model what an auditor asks: revision and digest, licence, languages, quantization,
signer, and evaluation results only when there are some."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from sovkit.cli import run
from sovkit.config import load_stack
from sovkit.config.runtime import vendor_lock
from sovkit.config.signers import parse_signer
from sovkit.render.bom import Evaluation, bom_document, gate_evaluations
from sovkit.render.gate import GateReport, SetScore
from sovkit.stacks import project_root, stack_files

ROOT = project_root()
VALIDATOR = JsonStrictValidator(SchemaVersion.V1_6)
WHEN = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def document(site, **kwargs) -> dict:
    text = bom_document(site, timestamp=WHEN, **kwargs)
    error = VALIDATOR.validate_str(text)
    assert error is None, error
    return json.loads(text)


def components(doc: dict) -> dict[str, dict]:
    """Every component by bom-ref, nested ones included."""
    found, todo = {}, list(doc["components"])
    while todo:
        component = todo.pop()
        found[component["bom-ref"]] = component
        todo += component.get("components", [])
    return found


def properties(component: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for prop in component.get("properties", []):
        out.setdefault(prop["name"], []).append(prop["value"])
    return out


@pytest.mark.parametrize("path", stack_files(ROOT), ids=lambda p: p.stem.removeprefix("Pulumi."))
def test_every_shipped_sites_bom_validates_and_lists_each_model(path):
    site = load_stack(path)
    doc = document(site)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.6")
    assert doc["metadata"]["component"]["name"] == site.name
    parts = components(doc)
    for served, spec in site.serving.models.items():
        model = parts[f"model:{served}"]
        props = properties(model)
        assert (model["type"], model["name"], model["version"]) == ("machine-learning-model", served, spec.revision)
        assert props["sovkit:catalogue"] == [spec.catalogue] and props["sovkit:quantization"] == [spec.quantization]
        assert props["sovkit:language"] == sorted(spec.languages)
        assert model["licenses"] and not [name for name in props if name.startswith("sovkit:evaluation:")]
        if spec.revision.startswith("sha256:"):
            assert model["hashes"] == [{"alg": "SHA-256", "content": spec.revision.removeprefix("sha256:")}]
    site_deps = next(d for d in doc["dependencies"] if d["ref"] == f"site:{site.name}")
    assert {f"model:{m}" for m in site.serving.models} | {"runtime"} == set(site_deps["dependsOn"])


def test_hosts_mode_lists_every_pin_of_the_runtime_lock_with_its_wheels_sha256():
    site = load_stack(ROOT / "stacks" / "Pulumi.in-mh-pune.yaml")
    parts = components(document(site))
    lock = vendor_lock("nvidia")
    assert lock is not None
    for line in lock.lines:
        name, pinned = line.split()[0].split("==")
        package = next(c for c in parts["runtime"]["components"] if c["name"] == name)
        assert package["version"] == pinned and package["purl"].startswith("pkg:pypi/")
        assert package["hashes"][0]["content"] == line.split("--hash=sha256:")[1].split()[0]
    assert len(parts["runtime"]["components"]) == len(lock.lines)


def test_kubernetes_mode_lists_the_charts_images_for_the_accelerator():
    parts = components(document(load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")))
    assert parts["runtime:vllm"]["purl"] == "pkg:docker/vllm/vllm-openai@v0.32.0"
    assert parts["runtime:fetcher"]["type"] == "container"
    assert "runtime:verifier" not in parts  # no model of za's is signed: no verify-model runs


def test_a_kubernetes_site_with_a_signed_model_lists_the_weights_verifiers_image():
    from sovkit.models import verifier_image
    from sovkit.serving.scenarios import scenario_site

    parts = components(document(scenario_site("signed")))
    verifier = parts["runtime:verifier"]
    assert (verifier["name"], verifier["version"]) == (verifier_image.REPOSITORY, verifier_image.image_tag())
    assert verifier["purl"] == f"pkg:docker/{verifier_image.REPOSITORY}@{verifier_image.image_tag()}"


def test_licences_are_spdx_ids_when_the_catalogue_gives_one_else_names():
    parts = components(document(load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")))
    bge, llama = parts["model:bge-m3"], parts["model:llama-3-1-8b"]
    assert bge["licenses"] == [{"license": {"id": "MIT"}}]
    assert llama["licenses"] == [{"license": {"name": "LicenseRef-Llama-3.1-Community-License"}}]
    assert llama["purl"].startswith("pkg:huggingface/neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8@")


def test_a_signed_model_names_its_signature_and_its_signers_fingerprint(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    signer = tmp_path / "team.pub"
    signer.write_bytes(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    text = (ROOT / "stacks" / "Pulumi.br-ministerio-cpu.yaml").read_text()
    stack = tmp_path / "Pulumi.br-ministerio-cpu.yaml"
    stack.write_text(text.replace("      replicas: 2\n", f"      replicas: 2\n      signature: model.sig\n"
                                                         f"      signer: {signer}\n", 1))
    site = load_stack(stack)
    props = properties(components(document(site))["model:qwen2-5-1-5b"])
    assert props["sovkit:signer:fingerprint"] == [parse_signer(signer.read_bytes()).fingerprint]
    assert props["sovkit:signature"] == [site.serving.models["qwen2-5-1-5b"].source + "/model.sig"]
    assert props["sovkit:signer:kind"] == ["public key"]


def test_evaluation_results_appear_only_when_passed_in_and_only_for_served_models():
    site = load_stack(ROOT / "stacks" / "Pulumi.local.yaml")
    doc = document(site, evaluations={"tiny-chat": [Evaluation("mmlu", "acc", 0.25)]})
    parts = components(doc)
    assert properties(parts["model:tiny-chat"])["sovkit:evaluation:mmlu:acc"] == ["0.25"]
    assert not [n for n in properties(parts["model:tiny-health"]) if n.startswith("sovkit:evaluation:")]
    with pytest.raises(ValueError, match="does not serve: tiny-chta"):
        bom_document(site, evaluations={"tiny-chta": [Evaluation("mmlu", "acc", 0.25)]})


def test_the_quality_gates_scores_and_verdicts_go_into_the_bom_as_the_stack_judges_them_now():
    site = load_stack(ROOT / "stacks" / "Pulumi.local.yaml")
    spec = site.serving.models["tiny-chat"]
    scores = [SetScore(name=n, language=s.language, source=s.source, digest=s.digest, items=30, score=0.1)
              for n, s in spec.evaluation.sets.items()]
    report = GateReport(site="local", model="tiny-chat", catalogue=spec.catalogue, revision=spec.revision,
                        endpoint="https://gw/v1/chat/completions", harness="lm-eval 0.4.13 local-chat-completions",
                        started="2026-12-03T10:00:00+00:00", seconds=4.2, sets=scores, verdicts=[], passed=True)
    props = properties(components(document(site, evaluations=gate_evaluations(site, {"tiny-chat": report})))[
        "model:tiny-chat"])
    assert props["sovkit:evaluation:everyday-sw-sw:exact_match"] == ["0.1"]
    assert props["sovkit:evaluation:gate-sw:verdict"] == ["sw: exact_match 0.10 >= threshold 0.00"]
    assert props["sovkit:evaluation:gate:run"] == ["lm-eval 0.4.13 local-chat-completions, 2026-12-03T10:00:00+00:00, "
                                                   "4.2 s"]
    stale = report.model_copy(update={"revision": "sha256:" + "0" * 64})  # the report's verdict is not taken
    props = properties(components(document(site, evaluations=gate_evaluations(site, {"tiny-chat": stale})))[
        "model:tiny-chat"])
    assert props["sovkit:evaluation:gate-en:verdict"][0].startswith("en: not evaluated: the report is of local's")
    never = properties(components(document(site, evaluations=gate_evaluations(site, {})))["model:tiny-chat"])
    assert never["sovkit:evaluation:gate-en:verdict"][0].startswith("en: not evaluated: no gate report")


def test_the_same_site_at_the_same_time_is_the_same_document():
    site = load_stack(ROOT / "stacks" / "Pulumi.local.yaml")
    assert bom_document(site, timestamp=WHEN) == bom_document(site, timestamp=WHEN)


def test_bom_command_lists_the_bundle_from_its_manifest(tmp_path, capsys):
    bundle = tmp_path / "bundle"
    (bundle / "models" / "tiny-chat").mkdir(parents=True)
    manifest = {"site": "local", "runtime_lock": "cpu.txt", "models_made_offline": ["tiny-chat"],
                "files": {"models/tiny-chat/config.json": {"sha256": "ab" * 32, "bytes": 12}}}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "bom.cdx.json"
    assert run(["bom", "local", "--bundle", str(bundle), "-o", str(out)]) == 0
    assert "and its bundle" in capsys.readouterr().out
    text = out.read_text()
    assert VALIDATOR.validate_str(text) is None
    parts = components(json.loads(text))
    assert parts["bundle:models/tiny-chat/config.json"]["hashes"][0]["content"] == "ab" * 32
    assert properties(parts["bundle"])["sovkit:runtime_lock"] == ["cpu.txt"]
    assert run(["bom", "local", "--bundle", str(tmp_path / "none")]) == 2
    assert "no bundle manifest here" in capsys.readouterr().err


def test_the_schema_check_refuses_a_model_component_cyclonedx_does_not_know():
    """The validation above can fail: a component of a type the 1.6 schema lacks is refused."""
    doc = json.loads(bom_document(load_stack(ROOT / "stacks" / "Pulumi.local.yaml"), timestamp=WHEN))
    next(c for c in doc["components"] if c["bom-ref"] == "model:tiny-chat")["type"] = "model"
    assert VALIDATOR.validate_str(json.dumps(doc)) is not None
