"""Hosts mode's inventory: the serving groups, each model's launch from the one vLLM renderer, no secret."""

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from sovkit.config import load_stack
from sovkit.render.inventory import DATA_PATHS, inventory_yaml, render_inventory
from sovkit.render.vllm_args import render_vllm

ROOT = Path(__file__).resolve().parents[2]
LOCAL = load_stack(ROOT / "stacks" / "Pulumi.local.yaml")


def _filters():
    spec = importlib.util.spec_from_file_location("sovkit_serving_filters",
                                                  ROOT / "playbooks" / "filter_plugins" / "sovkit_serving.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_serving_groups_and_addresses():
    children = render_inventory(LOCAL)["all"]["children"]
    serving = [n.name for n in LOCAL.serving_nodes()]
    assert list(children["serving"]["hosts"]) == serving
    assert list(children["monitoring"]["hosts"]) == serving[:1]
    assert sorted(children["monitored"]["hosts"]) == sorted(n.name for n in LOCAL.nodes)
    worker = children["cpu_worker"]["hosts"][serving[0]]
    assert worker["ansible_host"] == serving[0] and worker["sovkit_address"].startswith("198.18.0.")


def test_each_model_is_launched_as_the_one_renderer_says():
    models = render_inventory(LOCAL)["all"]["vars"]["sovkit_serving"]["models"]
    for name, model in models.items():
        launch = render_vllm(LOCAL, name, model_path=f"{DATA_PATHS['model_store']}/{name}")
        assert (model["args"], model["env"], model["port"]) == (launch.args, launch.env, launch.port)
        assert "127.0.0.1" in model["args"]  # behind the gateway only


def test_no_key_reaches_the_inventory(tmp_path: Path):
    text = inventory_yaml(LOCAL)
    for tenant in LOCAL.serving.tenants.values():
        assert tenant.api_key.file in text  # the path, which is no secret
    assert "api_key" not in text and "VLLM_API_KEY" not in text


def test_kubernetes_sites_have_no_hosts_serving():
    inventory = yaml.safe_load(inventory_yaml(load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")))
    assert inventory["all"]["vars"]["sovkit_serving"] is None
    assert "serving" not in inventory["all"]["children"]


def test_gateway_gets_key_hashes_from_files_or_pulumi(tmp_path: Path):
    key = "k" * 40
    (tmp_path / "a.key").write_text(key + "\n")
    tenants = {"a": {"models": ["m"], "key_file": str(tmp_path / "a.key")}, "b": {"models": ["m"]}}
    out = _filters().tenant_key_hashes(tenants, json.dumps({"b": "p" * 40}))
    assert out["a"] == {"models": ["m"], "key_sha256": hashlib.sha256(key.encode()).hexdigest()}
    assert out["b"]["key_sha256"] == hashlib.sha256(b"p" * 40).hexdigest()
    assert "key_file" not in out["a"]


@pytest.mark.parametrize(("tenants", "message"), [
    ({"a": {"models": ["m"], "key_file": "/nonexistent/a.key"}}, "cannot read its API key file /nonexistent/a.key"),
    ({"b": {"models": ["m"]}}, "SOVKIT_TENANT_KEYS does not hold it"),
])
def test_missing_keys_stop_the_play_with_the_reason(tenants: dict, message: str):
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match=message):
        _filters().tenant_key_hashes(tenants, "")
