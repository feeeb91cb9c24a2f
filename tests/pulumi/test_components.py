"""The components on their own: arguments in, resources out, independent of the shipped stacks' choices."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from sovkit.config import load_stack
from sovkit.infra import host_configuration as hc
from sovkit.infra import kubeconfig
from sovkit.infra.host_configuration import HostConfiguration, HostConfigurationArgs, config_hash
from sovkit.infra.kubernetes_platform import KubernetesPlatform, KubernetesPlatformArgs, network_policies
from sovkit.infra.nodes import Nodes, NodesArgs
from sovkit.infra.program import build, export
from sovkit.infra.pulumi_config import site_from_pulumi
from sovkit.infra.residency import install
from sovkit.infra.testing import ROOT, run_program, with_test_key

OPENSTACK = with_test_key(load_stack(ROOT / "stacks" / "Pulumi.id-sulsel-cloud.yaml"))


# --- the site play's trigger -------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "roles" / "residency_network" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "residency_network" / "tasks" / "main.yml").write_text("- name: a\n")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "site.yml").write_text("- import_playbook: harden.yml\n")
    return tmp_path


def test_trigger_is_stable(tree):
    assert config_hash("inv", {"k": "v"}, tree) == config_hash("inv", {"k": "v"}, tree)


def test_trigger_changes_with_a_role_file(tree):
    before = config_hash("inv", {"k": "v"}, tree)
    (tree / "roles" / "residency_network" / "tasks" / "main.yml").write_text("- name: b\n")
    assert config_hash("inv", {"k": "v"}, tree) != before


def test_trigger_changes_with_a_new_playbook_file(tree):
    before = config_hash("inv", {"k": "v"}, tree)
    (tree / "playbooks" / "serve.yml").write_text("- hosts: all\n")
    assert config_hash("inv", {"k": "v"}, tree) != before


def test_trigger_changes_with_inventory_and_config(tree):
    base = config_hash("inv", {"k": "v"}, tree)
    assert config_hash("inv2", {"k": "v"}, tree) != base
    assert config_hash("inv", {"k": "w"}, tree) != base


def test_trigger_ignores_caches(tree):
    before = config_hash("inv", {}, tree)
    (tree / "roles" / "__pycache__").mkdir()
    (tree / "roles" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert config_hash("inv", {}, tree) == before


def test_play_reruns_when_a_role_changes(tree):
    """Through the component: the Command's trigger follows the role file."""

    def play():
        return HostConfiguration("t", HostConfigurationArgs(site_name="t", inventory="all: {}\n",
                                                            stack_config={"a": "1"}, root=tree))

    first = run_program("local", play).mocks.named("t-site-play").plain("triggers")
    (tree / "roles" / "residency_network" / "tasks" / "main.yml").write_text("- name: changed\n")
    second = run_program("local", play).mocks.named("t-site-play").plain("triggers")
    assert first != second
    assert second == [config_hash("all: {}\n", {"a": "1"}, tree)]


def test_hosts_mode_tenant_keys_reach_the_play_as_a_secret(tree):
    from pulumi.runtime import rpc

    def play():
        import pulumi

        return HostConfiguration("t", HostConfigurationArgs(
            site_name="t", inventory="all: {}\n", stack_config={}, root=tree,
            tenant_keys={"a": pulumi.Output.secret("sk-test-secret-a")}))

    play_command = run_program("local", play).mocks.named("t-site-play")
    environment = play_command.inputs["environment"]
    assert rpc.is_rpc_secret(environment) or rpc.is_rpc_secret(environment[hc.TENANT_KEYS_ENV])
    assert json.loads(play_command.plain("environment")[hc.TENANT_KEYS_ENV]) == {"a": "sk-test-secret-a"}


def test_play_command_runs_the_converge_pipeline_with_this_python():
    """`python -m sovkit.converge SITE` (the one pipeline `sovkit up` and `sovkit rehearse` run) with the Python
    given, quoted, files it writes private to the operator."""
    command = hc.playbook_command("my site", python="/opt/my venv/bin/python")
    assert command == "umask 077 && '/opt/my venv/bin/python' -m sovkit.converge 'my site'"
    assert hc.playbook_command("s").endswith(" -m sovkit.converge s") and sys.executable in hc.playbook_command("s")


def test_with_addresses_adds_provider_facts_to_each_host_once():
    """Addresses and reported variables go to the host's own entry; membership-only groups stay as they were."""
    inventory = {"all": {"vars": {}, "children": {
        "gpu_worker": {"hosts": {"w-1": {"ansible_user": "debian"}}},
        "serving": {"hosts": {"w-1": {}}}}}}
    done = yaml.safe_load(hc.with_addresses(inventory, {"w-1": "198.51.100.7"},
                                            {"w-1": {"sovkit_data_volume": {"volume_id": "v"}}}))
    assert done["all"]["children"]["gpu_worker"]["hosts"]["w-1"] == {
        "ansible_user": "debian", "ansible_host": "198.51.100.7", "sovkit_address": "198.51.100.7",
        "sovkit_data_volume": {"volume_id": "v"}}
    assert "sovkit_data_volume" not in done["all"]["children"]["serving"]["hosts"]["w-1"]
    assert inventory["all"]["children"]["gpu_worker"]["hosts"]["w-1"] == {"ansible_user": "debian"}  # not touched


# --- nodes ---------------------------------------------------------------------------------------------------


def test_floating_ip_only_when_enabled_and_in_policy():
    args = NodesArgs.from_site(OPENSTACK)
    placement = args.openstack.model_copy(update={"floating_ip": True, "floating_ip_pool": "national-ext"})
    enabled = args.model_copy(update={"openstack": placement})

    def body():
        # The site's own policy allows no floating IP; this one does, as a stack with openstackFloatingIp would.
        infra = OPENSTACK.infrastructure.model_copy(update={"openstack_floating_ip": True})
        install(dataclasses.replace(OPENSTACK, infrastructure=infra))
        return Nodes("n", enabled)

    run = run_program("id-sulsel-cloud", body)
    floating = run.mocks.of_type("openstack:networking/floatingIp:FloatingIp")
    assert [f.plain("pool") for f in floating] == ["national-ext"]
    associate = run.mocks.of_type("openstack:networking/floatingIpAssociate:FloatingIpAssociate")
    assert associate[0].plain("portId") == "port-id-sulsel-cloud-gpu-worker-1"


def test_floating_ip_without_pool_is_a_clear_error():
    args = NodesArgs.from_site(OPENSTACK)
    enabled = args.model_copy(update={"openstack": args.openstack.model_copy(update={"floating_ip": True})})
    with pytest.raises(Exception, match="openstackFloatingIp is true"):
        run_program("id-sulsel-cloud", lambda: Nodes("n", enabled))


def test_generated_openstack_site_scales():
    groups = {"gpu_worker": OPENSTACK.infrastructure.openstack_node_groups["gpu_worker"].model_copy(
        update={"count": 40})}
    args = NodesArgs.from_site(OPENSTACK)
    nodes = tuple(args.nodes[-1].model_copy(update={"name": f"w-{i}"}) for i in range(40))
    big = args.model_copy(update={"nodes": nodes, "openstack": args.openstack.model_copy(
        update={"node_groups": groups})})
    run = run_program("id-sulsel-cloud", lambda: Nodes("n", big))
    assert len(run.mocks.of_type("openstack:compute/instance:Instance")) == 40


# --- kubernetes platform -----------------------------------------------------------------------------------


def test_platform_takes_chart_and_values_as_arguments(run_of):
    values = {"image": {"repository": "harbor.cloud.go.example/sovkit/vllm", "tag": "1"}, "anything": [1, 2]}
    site = run_of("id-sulsel-cloud").site

    def body():
        return KubernetesPlatform("p", KubernetesPlatformArgs(
            site=site, kubeconfig="apiVersion: v1\n", chart_path="/some/chart", serving_values=values,
            chart_repository="oci://charts.cloud.go.example/mirror",
            tenant_keys={t: f"key-of-{t}-" + "x" * 32 for t in site.serving.tenants}))

    run = run_program("id-sulsel-cloud", body)
    serving = run.mocks.named("p-serving")
    assert serving.plain("chart") == "/some/chart"
    assert serving.plain("values") == values
    assert run.mocks.named("p-monitoring").plain("chart") == "oci://charts.cloud.go.example/mirror/kube-prometheus-stack"
    # no credentials given, no model store Secret; no model in the values, no model key Secret
    names = {r.plain("metadata")["name"] for r in run.mocks.of_type("kubernetes:core/v1:Secret")}
    assert names == {"sovkit-gateway-tls", "sovkit-tenant-keys"}


def test_network_policy_specs():
    policies = network_policies(["198.51.100.0/24"], ["203.0.113.0/24"], ["kube-system"])
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert policies["allow-dns"]["egress"][0]["ports"] == [{"protocol": "UDP", "port": 53},
                                                           {"protocol": "TCP", "port": 53}]
    peers = policies["allow-ingress"]["ingress"][0]["from"]
    assert {"ipBlock": {"cidr": "203.0.113.0/24"}} in peers


# --- fetching the kubeconfig ---------------------------------------------------------------------------------


def test_kubeconfig_points_at_the_node():
    text = "clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n"
    assert "server: https://198.51.100.11:6443" in kubeconfig.point_at(text, "198.51.100.11")
    assert "server: https://[2001:db8::1]:6443" in kubeconfig.point_at(text, "2001:db8::1")


def test_kubeconfig_decoded_from_ansible_json():
    content = base64.b64encode(b"apiVersion: v1\n").decode()
    doc = json.dumps({"plays": [{"tasks": [{"hosts": {"cp-01": {"content": content, "encoding": "base64"}}}]}]})
    assert kubeconfig.decode_slurp(doc, "cp-01") == "apiVersion: v1\n"
    failed = json.dumps({"plays": [{"tasks": [{"hosts": {"cp-01": {"failed": True, "msg": "no such file"}}}]}]})
    with pytest.raises(SystemExit, match="no such file"):
        kubeconfig.decode_slurp(failed, "cp-01")


def test_kubeconfig_first_control_plane():
    inventory = {"all": {"children": {"control_plane": {"hosts": {"cp-02": {"ansible_host": "198.51.100.12"},
                                                                  "cp-01": {"ansible_host": "198.51.100.11"}}}}}}
    assert kubeconfig.first_control_plane(inventory) == ("cp-01", "198.51.100.11")
    with pytest.raises(SystemExit, match="no control_plane"):
        kubeconfig.first_control_plane({"all": {"children": {}}})


# --- the trigger through the whole program ---------------------------------------------------------------------


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of this checkout's roles/ and playbooks/, plus files the play does not read."""
    for folder in hc.HASHED_DIRS:
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", ".cache"))
    (tmp_path / "README.md").write_text("# site\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "pulumi.md").write_text("how to run\n")
    return tmp_path


def _program_trigger(stack: str, root: Path) -> tuple[str, list]:
    def body():
        program = build(site_from_pulumi(), root=root)
        export(program)
        return program

    run = run_program(stack, body)
    return run.outputs["sitePlayTrigger"], run.mocks.named(f"{stack}-site-play").plain("triggers")


@pytest.mark.parametrize("stack", ["local", "za-national-dc"])
def test_program_reruns_the_play_when_a_role_changes_and_not_otherwise(stack, checkout):
    """Same checkout, same stack: same trigger (no re-run). Files the play does not read (docs, the chart, a
    role's molecule scenario): same trigger. One changed line in a role's task file, or a new playbook: a new
    trigger, so pulumi-command runs the play again."""
    if stack == "za-national-dc":
        shutil.copytree(ROOT / "charts", checkout / "charts")
    first, triggers = _program_trigger(stack, checkout)
    assert triggers == [first]
    assert _program_trigger(stack, checkout)[0] == first

    (checkout / "README.md").write_text("# site, reworded\n")
    (checkout / "docs" / "pulumi.md").write_text("how to run, reworded\n")
    if stack == "za-national-dc":  # the chart goes to Helm, not to the play
        (checkout / "charts" / "sovkit-serving" / "README.md").write_text("reworded\n")
    scenario = sorted((checkout / "roles").glob("*/molecule/default/molecule.yml"))[0]
    scenario.write_text(scenario.read_text() + "# CI only\n")
    assert _program_trigger(stack, checkout)[0] == first

    task = sorted((checkout / "roles").glob("*/tasks/main.yml"))[0]
    task.write_text(task.read_text() + "# one changed line\n")
    second = _program_trigger(stack, checkout)[0]
    assert second != first
    (checkout / "playbooks" / "extra.yml").write_text("---\n- hosts: all\n")
    assert _program_trigger(stack, checkout)[0] not in (first, second)


def test_hosts_mode_tenant_key_is_part_of_the_trigger_and_keeps_it_secret(tree):
    """A rotated API key must reach the gateway: the play re-runs, and the trigger holding its digest is secret."""
    import pulumi

    def play(key):
        def body():
            made = HostConfiguration("t", HostConfigurationArgs(
                site_name="t", inventory="all: {}\n", stack_config={}, root=tree,
                tenant_keys={"a": pulumi.Output.secret(key)}))
            pulumi.export("trigger", made.trigger)
            return made
        return body

    one = run_program("local", play("sk-test-secret-one"))
    two = run_program("local", play("sk-test-secret-two"))
    assert "trigger" in one.secret_outputs
    assert one.outputs["trigger"] != two.outputs["trigger"]
    assert one.outputs["trigger"] == config_hash("all: {}\n", {}, tree, {"a": "sk-test-secret-one"})
    assert one.outputs["trigger"] != config_hash("all: {}\n", {}, tree)


def test_etcd_snapshot_credentials_are_part_of_the_trigger_and_keep_it_secret(tree):
    """A rotated etcd snapshot credential must reach rke2-server's environment: the play re-runs, the trigger
    holding its digest is secret, and the converge reads it from its own environment variable."""
    import pulumi

    def play(secret):
        def body():
            made = HostConfiguration("t", HostConfigurationArgs(
                site_name="t", inventory="all: {}\n", stack_config={}, root=tree,
                etcd_snapshot_credentials={"accessKeyId": pulumi.Output.secret("k"),
                                           "secretAccessKey": pulumi.Output.secret(secret)}))
            pulumi.export("trigger", made.trigger)
            return made
        return body

    one = run_program("local", play("etcd-secret-one"))
    two = run_program("local", play("etcd-secret-two"))
    assert "trigger" in one.secret_outputs and one.outputs["trigger"] != two.outputs["trigger"]
    assert one.outputs["trigger"] == config_hash("all: {}\n", {}, tree, None,
                                                 {"accessKeyId": "k", "secretAccessKey": "etcd-secret-one"})
    environment = one.mocks.named("t-site-play").plain("environment")
    assert json.loads(environment[hc.ETCD_CREDENTIALS_ENV]) == {"accessKeyId": "k",
                                                                 "secretAccessKey": "etcd-secret-one"}
    assert hc.TENANT_KEYS_ENV not in environment
