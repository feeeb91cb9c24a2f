"""The serving roles retire what a stack no longer asks for (roles/vllm_service/tasks/retire_stale.yml and
roles/model_store/tasks/retire_stale.yml), on a podman host with systemd: a model taken out of the stack loses its
server (stopped, disabled, its unit gone), its environment, its working folder, its weights verification, its
signature and its signer; a model no longer signed loses its verification (its server would otherwise still require
a check of a signature the stack no longer names), signature and signer; what the stack serves is left alone, and a
second run changes nothing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sovkit.converge import PlayRun
from sovkit.hosts import BuiltImage, Lab, Podman
from sovkit.render.inventory import LOCAL_CONNECTION
from sovkit.render.role_vars import model_server_files

sys.path.insert(0, str(Path(__file__).parent))
from harden_lab import REPO_ROOT, ansible_env, lone_host

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

HOST = "sovkit-retire-host"
HOME = "/var/lib/sovkit/vllm"
UNITS = "/etc/systemd/system"
SIGNATURES = "/etc/sovkit/model-signatures"
# retired: out of the stack; unsigned: still served, its signature dropped; kept: served and signed
STACK_MODELS = {"kept": {"port": 8001, "signature": "kept.sig"}, "unsigned": {"port": 8002}}
STAND_IN_UNIT = ("[Unit]\nDescription=a model server's stand-in\n[Service]\nExecStart=/bin/sleep infinity\n"
                 "[Install]\nWantedBy=multi-user.target\n")


@pytest.fixture(scope="module")
def host(podman: Podman, host_image: BuiltImage, lab: Lab) -> Iterator[str]:
    with lone_host(lab, host_image.tag, HOST, "198.51.100.41") as name:
        yield name


def retire(podman: Podman, workdir: Path) -> PlayRun:
    inventory = {"all": {"hosts": {HOST: {"ansible_connection": LOCAL_CONNECTION, "ansible_host": HOST}}}}
    (workdir / "inventory.yml").write_text(yaml.safe_dump(inventory))
    signed = [f"{SIGNATURES}/kept.pem", f"{SIGNATURES}/kept.sig"]  # as sovkit/render/role_vars.py renders them
    play = [{"hosts": "all", "gather_facts": False,
             "vars": {"vllm_service_models": STACK_MODELS, "model_store_signature_files": signed,
                      **model_server_files(STACK_MODELS)},  # what the role keeps, as sovkit renders it
             "tasks": [{"ansible.builtin.include_role": {"name": role, "tasks_from": "retire_stale"}}
                       for role in ("vllm_service", "model_store")]}]
    (workdir / "play.yml").write_text(yaml.safe_dump(play))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(workdir / "inventory.yml"),
                           str(workdir / "play.yml")], cwd=REPO_ROOT, env=ansible_env(podman), capture_output=True,
                          text=True, check=False, timeout=300)
    return PlayRun(proc.returncode, 0.0, proc.stdout + proc.stderr)


def test_a_model_out_of_the_stack_leaves_nothing_and_an_unsigned_one_no_verification(host, podman: Podman,
                                                                                      tmp_path: Path):
    files = [f"{UNITS}/sovkit-vllm-{m}.service" for m in ("retired", "unsigned", "kept")]
    verifications = [f"{UNITS}/sovkit-verify-weights-{m}.service" for m in ("retired", "unsigned", "kept")]
    script = " && ".join([
        f"mkdir -p /etc/sovkit/vllm {SIGNATURES} " + " ".join(f"{HOME}/{m}" for m in ("retired", "unsigned", "kept")),
        *(f"touch {SIGNATURES}/{m}.sig {SIGNATURES}/{m}.pem" for m in ("retired", "unsigned", "kept")),
        *(f"printf %b {STAND_IN_UNIT!r} > {path}" for path in files + verifications),
        *(f"echo VLLM_HOST_IP=127.0.0.1 > /etc/sovkit/vllm/{m}.env" for m in ("retired", "unsigned", "kept")),
        "systemctl daemon-reload", "systemctl enable --now sovkit-vllm-retired.service sovkit-vllm-kept.service"])
    podman("exec", HOST, "sh", "-c", script)

    first = retire(podman, tmp_path)
    assert first.returncode == 0, first.output[-4000:]
    present = podman("exec", HOST, "sh", "-c", "ls -1d /etc/sovkit/vllm/*.env " + " ".join(
        [*files, *verifications, *(f"{HOME}/{m}" for m in ("retired", "unsigned", "kept"))])
        + f" {SIGNATURES}/* 2>/dev/null; true")
    assert sorted(present.split()) == sorted([
        "/etc/sovkit/vllm/kept.env", "/etc/sovkit/vllm/unsigned.env", f"{UNITS}/sovkit-vllm-unsigned.service",
        f"{UNITS}/sovkit-vllm-kept.service", f"{UNITS}/sovkit-verify-weights-kept.service", f"{HOME}/unsigned",
        f"{HOME}/kept", f"{SIGNATURES}/kept.sig", f"{SIGNATURES}/kept.pem"])
    states = podman("exec", HOST, "systemctl", "is-active", "sovkit-vllm-retired.service", "sovkit-vllm-kept.service",
                    check=False).split()
    assert states == ["inactive", "active"]  # the retired server stopped; the served one untouched
    wanted = podman("exec", HOST, "sh", "-c", "ls -1 /etc/systemd/system/multi-user.target.wants/ | grep sovkit-vllm-",
                    check=False).split()
    assert wanted == ["sovkit-vllm-kept.service"]  # the retired server disabled before its unit went
    assert podman("exec", HOST, "systemctl", "show", "-p", "NeedDaemonReload", "--value",
                  "sovkit-vllm-kept.service").strip() == "no"  # systemd reloaded after the removals

    again = retire(podman, tmp_path)
    assert again.returncode == 0 and again.changed == {HOST: 0}, again.output[-3000:]
