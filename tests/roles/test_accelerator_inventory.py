"""The accelerator role's refusal of a host whose GPUs differ from the stack: the task exactly as
roles/accelerator/tasks/nvidia.yml writes it, run by ansible-playbook on this machine (a local connection, the
check runs on the controller) with in-mh-pune's rendered host variables, and what nvidia-smi prints given as the
registered result (composed from nvidia-smi's documented CSV format: no GPU is here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from sovkit.config import load_stack
from sovkit.render.inventory import render_inventory

ROOT = Path(__file__).resolve().parents[2]
TASK = "Refuse a host whose GPUs differ from the stack (their count, and the memory the planner sized against)"
L40S = "{i}, NVIDIA L40S, 46068"


def test_the_role_refuses_a_host_one_gpu_short_and_passes_the_one_the_stack_counts(tmp_path: Path):
    tasks = yaml.safe_load((ROOT / "roles" / "accelerator" / "tasks" / "nvidia.yml").read_text())
    task = next(t for t in tasks if t["name"] == TASK)
    host = render_inventory(load_stack(ROOT / "stacks" / "Pulumi.in-mh-pune.yaml"))["all"]["children"]
    given = {k: v for k, v in host["gpu_worker"]["hosts"]["pune-ai-01"].items() if k.startswith("accelerator_")}
    shown = {"as-counted": 4, "one-short": 3}
    hosts = {name: {**given, "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                    "accelerator_nvidia_gpus": {"stdout": "\n".join(L40S.format(i=i) for i in range(n))}}
             for name, n in shown.items()}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    play = [{"name": "GPU inventory", "hosts": "all", "gather_facts": False, "tasks": [task]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "json"}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
                           str(tmp_path / "play.yml")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    outcome = json.loads(proc.stdout[proc.stdout.index("{"):])["plays"][0]["tasks"][0]["hosts"]
    assert not outcome["as-counted"].get("failed"), outcome["as-counted"]
    assert outcome["one-short"]["failed"]
    assert outcome["one-short"]["msg"] == (
        "one-short: nvidia-smi: refusing before any change. one-short: nvidia-smi: found 3 GPUs; allowed: "
        "4 L40S-48GB GPUs, as the stack counts them. Nothing was changed.")
