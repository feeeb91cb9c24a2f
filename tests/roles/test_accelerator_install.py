"""The accelerator role installs the driver for real: its tasks exactly as roles/accelerator/tasks/container.yml,
driver.yml and the vendor's file write them, run by ansible-playbook on this machine (a local connection) with
in-mh-pune's and id-sulsel-cloud's rendered variables. The tasks that would change this machine (apt, systemd,
modprobe) run through a recorder that returns what they were asked, with their arguments templated as Ansible
templates them; `uname -r` runs for real; what nvidia-smi and rocm-smi print is given as the registered result
(composed from their documented CSV formats: no GPU is here). The container facts are given as a podman host's setup
reports them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sovkit.config import load_stack
from sovkit.config.site import accelerator_catalogue
from sovkit.render.inventory import render_inventory

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "roles" / "accelerator" / "tasks"
PUNE = ROOT / "stacks" / "Pulumi.in-mh-pune.yaml"
ID = ROOT / "stacks" / "Pulumi.id-sulsel-cloud.yaml"
# Modules that would change this machine: the recorder answers in their place.
CHANGING = ("ansible.builtin.apt", "ansible.builtin.systemd_service", "community.general.modprobe")
RECORDER = '''from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result.update(changed=False, asked=dict(self._task.args))
        return result
'''
READ_GPUS = "Read the GPUs the driver sees"
READ_ROCM = "Read the GPUs ROCm sees, and the memory of each"
ROCM_SMI = "Install rocm-smi, which reads the GPUs (Debian 12's main; ROCm's libraries come with the runtime)"
HEADERS = "Install the running kernel's headers (real hosts; a container shares the machine's kernel)"
MODULE = "Install the kernel module's DKMS source, built for the running kernel (real hosts; a container cannot build)"
DRIVER = "Install the driver's user space (the vendor's driver libraries, its GPU tools and firmware)"
FABRIC = "Install NVIDIA Fabric Manager at the driver's version (NVSwitch boards)"
LOAD = "Load the driver, a no-op once it is loaded (real hosts; a container cannot load a module)"
PERSISTENCE = "Run the persistence daemon, now and at boot (the GPUs stay initialised between model servers)"
FABRIC_SERVICE = ("Run Fabric Manager, now and at boot (CUDA sees no GPU of an NVSwitch board before it sets up "
                  "the fabric)")
KERNEL = "Read the running kernel, which DKMS builds the module for"
SKIPS = "Say what a container skips"
GATHER = "Gather whether this host is a container"
TOOLKIT = "Install the NVIDIA container toolkit (containers reach the GPUs)"
CHECK = "Refuse a host whose GPUs differ from the stack (their count, and the memory the planner sized against)"
REAL_HOST = {"ansible_virtualization_role": "NA", "ansible_virtualization_type": "NA"}  # setup on bare metal
PODMAN = {"ansible_virtualization_role": "guest", "ansible_virtualization_type": "podman"}


def recorded(task: dict) -> dict:
    """The task with a module that would change this machine swapped for the recorder, everything else as written."""
    module = next((m for m in CHANGING if m in task), None)
    if module is None:
        return task
    return {("sovkit_recorded" if k == module else k): v for k, v in task.items()}


def rendered_host(stack: Path) -> dict:
    """The accelerator variables sovkit renders for the stack's first GPU host (site-wide and the host's own)."""
    inventory = render_inventory(load_stack(stack))
    host = next(iter(inventory["all"]["children"]["gpu_worker"]["hosts"].values()))
    return {k: v for k, v in {**inventory["all"]["vars"], **host}.items() if k.startswith("accelerator_")}


def run_play(tmp_path: Path, hosts: dict, tasks: list[dict]) -> dict:
    """{task name: {host: result}} of one play over `hosts`, through ansible-playbook's JSON callback."""
    (tmp_path / "action_plugins").mkdir(exist_ok=True)
    (tmp_path / "action_plugins" / "sovkit_recorded.py").write_text(RECORDER)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(
        {"all": {"hosts": {name: {**local, **variables} for name, variables in hosts.items()}}}))
    play = [{"name": "accelerator", "hosts": "all", "gather_facts": False, "tasks": tasks}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "json",
           "ANSIBLE_ACTION_PLUGINS": f"{ROOT / 'playbooks' / 'action_plugins'}:{tmp_path / 'action_plugins'}"}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
                           str(tmp_path / "play.yml")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert "{" in proc.stdout, proc.stderr
    run = json.loads(proc.stdout[proc.stdout.index("{"):])["plays"][0]["tasks"]
    return {t["task"]["name"]: t["hosts"] for t in run}


def nvidia_smi(gpus: int, name: str, mib: int) -> dict:
    return {"stdout": "\n".join(f"{i}, {name}, {mib}" for i in range(gpus))}


@pytest.fixture(scope="module")
def nvidia_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """pune-ai-01 as a real host and as a podman container, and an 8x H200 HGX variant of the same site."""
    tmp_path = tmp_path_factory.mktemp("accelerator")
    hgx = tmp_path / "Pulumi.in-mh-pune.yaml"
    text = PUNE.read_text()
    assert "accelerator: {model: L40S-48GB, count: 4}" in text
    hgx.write_text(text.replace("accelerator: {model: L40S-48GB, count: 4}",
                                "accelerator: {model: H200-SXM-141GB, count: 8}"))
    pune, h200 = rendered_host(PUNE), rendered_host(hgx)
    hosts = {"pune-ai-01": {**pune, **REAL_HOST, "accelerator_nvidia_gpus": nvidia_smi(4, "NVIDIA L40S", 46068)},
             "pune-ai-01-in-podman": {**pune, **PODMAN,
                                      "accelerator_nvidia_gpus": nvidia_smi(4, "NVIDIA L40S", 46068)},
             "hgx-h200": {**h200, **REAL_HOST, "accelerator_nvidia_gpus": nvidia_smi(8, "NVIDIA H200", 143771)}}
    return run_play(tmp_path, hosts, vendor_tasks("nvidia.yml", READ_GPUS))


def vendor_tasks(vendor_file: str, read_gpus: str) -> list[dict]:
    """The tasks main.yml imports for a GPU host, in its order, but the one that reads the GPUs (given instead)."""
    return [recorded(t) for name in ("container.yml", "driver.yml", vendor_file)
            for t in yaml.safe_load((TASKS / name).read_text()) if t["name"] != read_gpus]


def asked(outcome: dict, task: str, host: str) -> dict:
    result = outcome[task][host]
    assert not result.get("skipped") and not result.get("failed"), (task, result)
    return result["asked"]


def test_pune_asks_apt_for_the_580_driver_from_nvidias_repository_with_headers_for_the_running_kernel(nvidia_run):
    pin = "=580.95.05*"
    assert asked(nvidia_run, HEADERS, "pune-ai-01") == {
        "name": f"linux-headers-{os.uname().release}", "state": "present", "install_recommends": False}
    assert asked(nvidia_run, MODULE, "pune-ai-01")["name"] == [f"nvidia-kernel-dkms{pin}"]
    assert asked(nvidia_run, DRIVER, "pune-ai-01") == {
        "name": [f"nvidia-driver-cuda{pin}", f"nvidia-smi{pin}", f"firmware-nvidia-gsp{pin}",
                 f"nvidia-persistenced{pin}"], "state": "present", "install_recommends": False}
    names = list(nvidia_run)
    assert names.index(HEADERS) < names.index(MODULE), "the headers are there before DKMS builds the module"
    assert asked(nvidia_run, LOAD, "pune-ai-01") == {"name": "nvidia", "state": "present"}
    assert asked(nvidia_run, PERSISTENCE, "pune-ai-01") == {
        "name": "nvidia-persistenced", "enabled": True, "state": "started"}
    assert not nvidia_run[CHECK]["pune-ai-01"].get("failed")


def test_fabric_manager_is_installed_and_run_on_an_nvswitch_board_and_not_for_punes_l40s(nvidia_run):
    assert asked(nvidia_run, FABRIC, "hgx-h200")["name"] == ["nvidia-fabricmanager-580=580.95.05*"]
    assert asked(nvidia_run, FABRIC_SERVICE, "hgx-h200") == {
        "name": "nvidia-fabricmanager", "enabled": True, "state": "started"}
    assert asked(nvidia_run, MODULE, "hgx-h200")["name"] == ["nvidia-kernel-dkms=580.95.05*"]
    for task in (FABRIC, FABRIC_SERVICE):
        assert nvidia_run[task]["pune-ai-01"].get("skipped"), task


def test_a_container_skips_building_and_loading_the_module_says_why_and_skips_nothing_else(nvidia_run):
    host = "pune-ai-01-in-podman"
    skipped = {task for task, hosts in nvidia_run.items() if hosts[host].get("skipped")}
    # Fabric Manager and the container toolkit are not for pune's hosts at all; the facts are given, not gathered.
    assert skipped == {KERNEL, HEADERS, MODULE, LOAD, FABRIC, FABRIC_SERVICE, GATHER, TOOLKIT}
    assert nvidia_run[SKIPS][host]["msg"] == (
        "pune-ai-01-in-podman: skipped building and loading the nvidia kernel module: the host is a podman "
        "container, which shares the machine's kernel")
    assert nvidia_run[SKIPS]["pune-ai-01"].get("skipped")
    assert asked(nvidia_run, DRIVER, host) == asked(nvidia_run, DRIVER, "pune-ai-01")
    assert asked(nvidia_run, PERSISTENCE, host)["state"] == "started"


# rocm-smi --showmeminfo vram --csv: a header, then one cardN row per GPU in bytes (an MI300X shows 205822885888 B);
# rocm-smi may print a warning before the header.
ROCM_CSV = "device,VRAM Total Memory (B),VRAM Total Used Memory (B)\n"


def rocm_smi(gpus: int, *, warning: bool = False) -> dict:
    warn = "WARNING: AMD GPU device(s) is/are in a low-power state. Check power control/runtime_status\n\n"
    return {"stdout": (warn if warning else "") + ROCM_CSV + "".join(
        f"card{i},205822885888,299687936\n" for i in range(gpus))}


def test_an_amd_host_is_refused_unless_rocm_smi_shows_exactly_the_counted_gpus_with_the_catalogues_memory(tmp_path):
    """No hosts-mode AMD stack validates until a site writes its ROCm runtime lock, so the host variables are the
    ones sovkit renders for a GPU host (accelerator_expected_*), for 8 MI300X, with the catalogue's memory."""
    tasks = yaml.safe_load((TASKS / "amd.yml").read_text())
    task = next(t for t in tasks if t["name"] == CHECK)
    expected = {"accelerator_expected_model": "MI300X-192GB", "accelerator_expected_count": 8,
                "accelerator_expected_memory_mib": accelerator_catalogue()["MI300X-192GB"]["memory_mib"]}
    shown = {"as-counted": rocm_smi(8, warning=True), "one-short": rocm_smi(7), "one-more": rocm_smi(9),
             "other-memory": {"stdout": rocm_smi(7)["stdout"] + "card7,68702699520,0\n"}}
    outcome = run_play(tmp_path, {name: {**expected, "accelerator_amd_gpus": gpus} for name, gpus in shown.items()},
                       [task])[CHECK]
    assert not outcome["as-counted"].get("failed"), outcome["as-counted"]
    refusal = "{host}: rocm-smi: refusing before any change. {host}: rocm-smi{finding}. Nothing was changed."
    assert outcome["one-short"]["msg"] == refusal.format(
        host="one-short", finding=": found 7 GPUs; allowed: 8 MI300X-192GB GPUs, as the stack counts them")
    assert outcome["one-more"]["msg"] == refusal.format(
        host="one-more", finding=": found 9 GPUs; allowed: 8 MI300X-192GB GPUs, as the stack counts them")
    assert outcome["other-memory"]["msg"] == refusal.format(
        host="other-memory", finding="[7]: found card7 with 65520 MiB; allowed: a MI300X-192GB with 196288 MiB (the "
                                     "memory the planner sized the models against)")


def test_an_amd_gpu_node_asks_apt_for_amdgpu_dkms_with_amds_epoch_then_rocm_smi_and_loads_amdgpu(tmp_path):
    """id-sulsel-cloud's MI210 nodes (the platform play runs this role on an RKE2 cluster's GPU nodes): the headers,
    then amdgpu-dkms from AMD's repository pinned with its epoch, no user-space driver package, rocm-smi from Debian,
    the amdgpu module loaded, and the 4 MI210 rocm-smi shows checked. No persistence daemon: AMD has none."""
    expected = {"accelerator_expected_count": 4, "accelerator_expected_model": "MI210-64GB",
                "accelerator_expected_memory_mib": accelerator_catalogue()["MI210-64GB"]["memory_mib"]}
    gpus = {"stdout": ROCM_CSV + "".join(f"card{i},{expected['accelerator_expected_memory_mib'] * 2**20},0\n"
                                         for i in range(4))}
    id_node = rendered_host(ID)
    assert {k: id_node[k] for k in expected} == expected
    outcome = run_play(tmp_path, {"id-gpu": {**id_node, **REAL_HOST, "accelerator_amd_gpus": gpus}},
                       vendor_tasks("amd.yml", READ_ROCM))
    assert asked(outcome, HEADERS, "id-gpu")["name"] == f"linux-headers-{os.uname().release}"
    assert asked(outcome, MODULE, "id-gpu")["name"] == ["amdgpu-dkms=1:6.12.12*"]
    assert outcome[DRIVER]["id-gpu"].get("skipped")
    assert asked(outcome, ROCM_SMI, "id-gpu") == {"name": "rocm-smi", "state": "present", "install_recommends": False}
    assert asked(outcome, LOAD, "id-gpu") == {"name": "amdgpu", "state": "present"}
    names = list(outcome)
    assert names.index(HEADERS) < names.index(MODULE) < names.index(LOAD) < names.index(CHECK)
    assert PERSISTENCE not in outcome
    assert not outcome[CHECK]["id-gpu"].get("failed"), outcome[CHECK]["id-gpu"]
