"""The vendor registry (sovkit/data/vendors/): every file complete and consistent with the accelerator catalogue,
and vLLM's own support table is what the planner applies."""

from pathlib import Path

import pytest
import yaml

from sovkit.config import runtime
from sovkit.config.schema import AcceleratorSection
from sovkit.config.site import accelerator_catalogue
from sovkit.config.vendors import vendor, vendor_names

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", vendor_names())
def test_a_vendor_file_is_complete_and_consistent(name: str):
    v = vendor(name)
    assert v.debian_components and v.debian_components[0] == "main"
    assert "none" in v.quantizations
    for quantization, generations in v.quantizations.items():
        assert set(generations) <= set(v.generations), (quantization, generations)
    assert set(v.quantization_methods) <= set(v.quantizations) - {"none"}
    if name != "cpu":
        assert v.device_env and v.device_nodes_each and v.kubernetes_resource
        assert v.device_nodes((0, 1))[:2] != v.device_nodes((2, 3))[:2]  # each GPU has its own node


@pytest.mark.parametrize("name", vendor_names())
def test_a_vendor_has_what_the_role_the_chart_and_hosts_mode_need(name: str):
    """Adding a vendor is its data file and these: the accelerator role's tasks for it, the chart's vLLM image, and
    a runtime lock that pins what the file's runtime requirements name (or the index to write one from)."""
    tasks = yaml.safe_load((ROOT / "roles" / "accelerator" / "tasks" / "main.yml").read_text())
    assert any(t.get("ansible.builtin.import_tasks") == f"{name}.yml" for t in tasks)
    assert (ROOT / "roles" / "accelerator" / "tasks" / f"{name}.yml").is_file()
    assert name in yaml.safe_load((ROOT / "charts" / "sovkit-serving" / "values.yaml").read_text())["images"]["vllm"]
    known, lock = vendor(name), runtime.vendor_lock(name)
    assert known.runtime_requirements
    if lock is None:
        assert known.runtime_index, f"{name}: no lock ships, and the data file does not say where its wheels are"
        return
    for requirement in known.runtime_requirements:
        package, version = requirement.split("==")
        assert lock.version(package) == version, requirement
    assert not {runtime.normalise(p) for p in known.runtime_without} & {runtime.normalise(p) for p in lock.pins}


@pytest.mark.parametrize("name", [n for n in vendor_names() if vendor(n).hosts_metrics_exporter])
def test_a_hosts_mode_gpu_exporter_is_a_file_of_the_kit_and_its_imports_are_locked(name: str):
    """The exporter runs on the GPU hosts from the runtime's venv: the lock must pin every distribution it imports
    (and scripts/lock-runtime.py resolves them with the runtime, so a new vLLM that drops one cannot drop it)."""
    known, lock = vendor(name), runtime.vendor_lock(name)
    assert (ROOT / "sovkit" / known.hosts_metrics_exporter).is_file()
    assert known.metrics_exporter_requires and lock is not None
    assert [p for p in known.metrics_exporter_requires if lock.version(p) is None] == []


def test_the_schema_takes_exactly_the_vendors_the_registry_holds():
    allowed = set(AcceleratorSection.model_fields["accelerator"].annotation.__args__)  # type: ignore[union-attr]
    assert allowed == set(vendor_names())


@pytest.mark.parametrize(("model", "spec"), sorted(accelerator_catalogue().items()))
def test_every_accelerator_belongs_to_a_generation_of_its_vendor(model: str, spec: dict):
    assert spec["generation"] in vendor(spec["vendor"]).generations, model


@pytest.mark.parametrize(("vendor_name", "generation", "quantization", "served"), [
    ("amd", "cdna2", "awq", False), ("amd", "cdna2", "gptq", False), ("amd", "cdna2", "fp8", False),
    ("amd", "cdna3", "fp8", True), ("nvidia", "volta", "awq", False), ("nvidia", "turing", "awq", True),
    ("nvidia", "volta", "gptq", True), ("nvidia", "hopper", "fp8", True), ("cpu", "x86-64-v3", "fp8", False),
    ("cpu", "x86-64-v3", "awq", True),
])
def test_vllms_support_table(vendor_name: str, generation: str, quantization: str, served: bool):
    """Rows of vLLM's supported-hardware table for quantization kernels, as the registry holds them."""
    assert vendor(vendor_name).serves(quantization, generation) is served
