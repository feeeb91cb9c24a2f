"""Every service's systemd sandbox comes from sovkit/data/sandbox.yaml: what each unit gets, and which units each
host runs (what the compliance suite then measures with systemd-analyze)."""

from __future__ import annotations

from pathlib import Path

from sovkit.config import load_stack
from sovkit.render import sandbox
from sovkit.render.inventory import render_inventory
from sovkit.verify.runner import inventory_hosts

ROOT = Path(__file__).resolve().parents[3]


def _settings(service: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in sandbox.settings(service):
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def test_every_service_keeps_the_common_confinement_it_does_not_give_up_for_a_reason():
    for service in sandbox.services():
        got = _settings(service)
        for key in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "ProtectKernelModules",
                    "RestrictNamespaces", "RestrictSUIDSGID", "UMask"):
            assert key in got, (service, key)
        assert got["ProtectSystem"] == ["strict"] and got["NoNewPrivileges"] == ["yes"]


def test_a_list_gives_the_setting_once_per_item_and_null_removes_it():
    gateway = _settings("gateway")
    assert gateway["ReadWritePaths"] == ["/run", "/var/lib/nginx", "/var/log/nginx"]
    assert "CAP_NET_BIND_SERVICE" in gateway["CapabilityBoundingSet"][0]
    model = _settings("model_server")
    assert "PrivateDevices" not in model and "MemoryDenyWriteExecute" not in model  # its GPUs, torch's compiler
    assert model["IPAddressDeny"] == ["any"] and model["IPAddressAllow"] == ["localhost"]
    assert "ProtectProc" not in _settings("node_exporter")


def test_each_host_lists_the_units_it_runs_and_the_roles_get_their_sandbox():
    inventory = render_inventory(load_stack(ROOT / "stacks" / "Pulumi.local.yaml"))
    hosts = inventory_hosts(inventory)
    control, worker = hosts["local-control-plane-1"], hosts["local-cpu-worker-1"]
    assert control["sandbox_units"] == ["prometheus-node-exporter.service"]
    assert worker["sandbox_units"] == sorted(["nginx.service", "prometheus-node-exporter.service",
                                              "prometheus.service", "prometheus-alertmanager.service",
                                              "prometheus-blackbox-exporter.service", "mtail.service",
                                              "sovkit-budget-keeper.service", "sovkit-vllm-tiny-chat.service",
                                              "sovkit-vllm-tiny-health.service",
                                              # the local stack's models are signed: verified before each start
                                              "sovkit-verify-weights-tiny-chat.service",
                                              "sovkit-verify-weights-tiny-health.service"])
    variables = inventory["all"]["vars"]
    assert variables["sandbox_max_exposure"] == sandbox.max_exposure() == 3.5
    assert variables["gateway_sandbox"] == sandbox.settings("gateway")
    assert variables["vllm_service_sandbox"] == sandbox.settings("model_server")
    assert variables["vllm_service_verifier_sandbox"] == sandbox.settings("weights_verifier")
    kubernetes = inventory_hosts(render_inventory(load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")))
    assert all(h["sandbox_units"] == [] for h in kubernetes.values())  # the cluster runs them


def test_the_compliance_suite_measures_every_sandboxed_service():
    """SOV-SRV-001 holds each unit of sandbox.yaml to the limit: none is left out of its checks. (The suite runs
    on its own, without sovkit's package: its table is read from its source.)"""
    import ast
    import re

    source = (ROOT / "sovkit" / "compliance" / "test_services.py").read_text()
    [table] = [node.value for node in ast.parse(source).body
               if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SERVICES"]
    patterns = ast.literal_eval(table).values()
    for service, unit in sandbox.services().items():
        example = unit.format(model="tiny-chat")
        assert any(re.fullmatch(pattern, example) for pattern in patterns), service
