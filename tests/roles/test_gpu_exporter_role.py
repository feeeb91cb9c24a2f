"""The monitoring role's GPU exporter in hosts mode, as in-mh-pune's GPU host and its Prometheus are given it: the
unit and the scrape configuration rendered by ansible-playbook from the role's own templates with the site's
rendered variables, the configuration checked by Prometheus' promtool (as the role checks it) and the unit's
sandbox rated by systemd-analyze. The exporter itself is tested against recorded NVML readings in
tests/unit/test_gpu_exporter.py; no GPU is here to start it on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sovkit.config import load_stack
from sovkit.config.vendors import vendor
from sovkit.render.inventory import render_inventory

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "monitoring"
TEMPLATES = ROLE / "templates" / "etc"
# The exporter needs nothing but its GPUs and a listening socket: its sandbox is held at this `systemd-analyze
# security` exposure or lower (1.9 as written), so a change that loosens it fails here.
EXPOSURE_AT_MOST = 2.0

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None,
                                reason="promtool is not installed (Debian package prometheus)")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    """The unit and prometheus.yml as the role writes them for pune-ai-01 (both the GPU host and Prometheus)."""
    out = tmp_path_factory.mktemp("gpu-exporter")
    pune = load_stack(ROOT / "stacks" / "Pulumi.in-mh-pune.yaml")
    inventory = render_inventory(pune)
    host = inventory["all"]["children"]["gpu_worker"]["hosts"]["pune-ai-01"]
    given = {k: v for k, v in {**inventory["all"]["vars"], **host}.items() if k.startswith("monitoring_")}
    variables = {**yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()), **given}
    tasks = [
        {"ansible.builtin.template": {"src": str(TEMPLATES / "systemd" / "system" / "sovkit-gpu-exporter.service.j2"),
                                      "dest": str(out / "sovkit-gpu-exporter.service")}},
        {"ansible.builtin.template": {"src": str(TEMPLATES / "prometheus" / "prometheus.yml.j2"),
                                      "dest": str(out / "prometheus.yml"),
                                      "validate": "promtool check config --syntax-only %s"}}]
    (out / "play.yml").write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "vars": variables,
                                                   "tasks": tasks}]))
    (out / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": {"pune-ai-01": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(out / "inventory.yml"),
                           str(out / "play.yml")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return {"unit": out / "sovkit-gpu-exporter.service", "prometheus": out / "prometheus.yml", "host": host,
            "venv": inventory["all"]["vars"]["vllm_service_venv"]}


def test_the_exporter_runs_from_the_runtime_venv_and_may_open_its_hosts_gpus_alone(rendered):
    unit = rendered["unit"].read_text()
    [exec_start] = re.findall(r"(?m)^ExecStart=(.*)$", unit)
    assert exec_start.split() == [f"{rendered['venv']}/bin/python", "/opt/sovkit/gpu-exporter/gpu_exporter.py",
                                  "--listen", "0.0.0.0:9400", "--hostname", "pune-ai-01"]
    assert "DevicePolicy=closed" in unit and "DynamicUser=yes" in unit
    allowed = re.findall(r"(?m)^DeviceAllow=(\S+) rw$", unit)
    assert allowed == vendor("nvidia").device_nodes((0, 1, 2, 3))  # pune-ai-01's four L40S and the driver's nodes


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (systemd)")
def test_systemd_rates_the_exporters_sandbox_ok(rendered):
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", str(rendered["unit"])],
                          capture_output=True, text=True, timeout=60, check=False)
    found = re.search(r"Overall exposure level for sovkit-gpu-exporter.service: ([0-9.]+) (\w+)", proc.stdout)
    assert found, proc.stdout[-2000:] + proc.stderr
    assert float(found.group(1)) <= EXPOSURE_AT_MOST, proc.stdout


def test_prometheus_scrapes_the_gpu_exporter_once_and_promtool_accepts_the_configuration(rendered):
    config = yaml.safe_load(rendered["prometheus"].read_text())
    jobs = [j["job_name"] for j in config["scrape_configs"]]
    assert len(jobs) == len(set(jobs))
    [gpu] = [j for j in config["scrape_configs"] if j["job_name"] == "gpu"]
    assert gpu["static_configs"] == [{"targets": rendered["host"]["monitoring_gpu_targets"]}]
    assert gpu.get("metrics_path", "/metrics") == "/metrics" and gpu.get("scheme", "http") == "http"
    proc = subprocess.run(["promtool", "check", "config", "--syntax-only", str(rendered["prometheus"])],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
