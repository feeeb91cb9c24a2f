"""Every shipped stack through the Pulumi program under mocks: the resources it declares and their properties."""

from __future__ import annotations

import ipaddress
import json
import shlex
import sys

import yaml
from pulumi_helpers import openstack_in_hosts_mode

from sovkit.config import load_stack
from sovkit.infra.host_configuration import config_hash, inventory_path, with_addresses
from sovkit.infra.nodes import DATA_VOLUME_VAR, METADATA_CIDR
from sovkit.infra.program import SERVING_CHART, stack_config
from sovkit.infra.testing import (
    FAKE_PEM_CERT,
    MOCK_GATEWAY_ADDRESS,
    ROOT,
    mock_image_id,
    run_program,
    stack_environment,
)
from sovkit.render import alerting, cluster
from sovkit.render.cluster import GATEWAY_NAMESPACE, MONITORING_CHART, MONITORING_NAMESPACE, SERVING_NAMESPACE
from sovkit.render.inventory import inventory_yaml, render_inventory

COMMAND = "command:local:Command"
RULE = "openstack:networking/secGroupRule:SecGroupRule"
INSTANCE = "openstack:compute/instance:Instance"
VOLUME = "openstack:blockstorage/volume:Volume"
NAMESPACE = "kubernetes:core/v1:Namespace"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
RELEASE = "kubernetes:helm.sh/v3:Release"
COMPONENTS = {"sovkit:infra:Nodes", "sovkit:hosts:HostConfiguration", "sovkit:kubernetes:KubernetesPlatform",
              "sovkit:kubernetes:ClusterGateway"}


def test_components_exist_with_type_tokens(shipped):
    types = {r.type_ for r in shipped.run.mocks.resources if not r.custom}
    expected = {"sovkit:infra:Nodes", "sovkit:hosts:HostConfiguration"}
    if shipped.site.platform.mode == "kubernetes":
        expected |= {"sovkit:kubernetes:KubernetesPlatform", "sovkit:kubernetes:ClusterGateway"}
    assert types == expected, shipped.name


def test_every_resource_is_a_child_of_a_sovkit_component(shipped):
    """parent=self on every child: each custom resource's URN names a sovkit component among its ancestors."""
    for urn in shipped.run.urns():
        qualified = urn.split("::")[2]
        if qualified.split("$")[-1] in COMPONENTS:
            continue
        assert any(part in COMPONENTS for part in qualified.split("$")[:-1]), urn


def test_outputs(shipped):
    outputs = shipped.run.outputs
    site = shipped.site
    assert outputs["site"] == {"name": site.name, "country": site.site.country, "profile": site.profile.id,
                               "provider": site.infrastructure.provider, "mode": site.platform.mode}
    assert set(outputs["nodes"]) == {n.name for n in site.nodes}
    assert outputs["complianceReport"] == f".sovkit/{site.name}/compliance/report.html"
    if site.platform.mode == "kubernetes":  # the cluster's gateway, by the name its certificate carries
        assert outputs["endpoints"] == {"gateway": f"https://{site.platform.gateway_hostname}/v1"}
        assert outputs["gatewayAddress"] == MOCK_GATEWAY_ADDRESS
        assert outputs["gatewayCa"].startswith(FAKE_PEM_CERT)
        return
    serving_roles = {site.model_role(m) for m in site.serving.models.values()}
    assert set(outputs["endpoints"]) == {n.name for n in site.nodes if n.role in serving_roles}
    for node, url in outputs["endpoints"].items():
        assert url == f"https://{outputs['nodes'][node]['address']}/v1"
    assert outputs["monitoring"]["prometheus"].startswith("http://")


def test_site_play_command_and_trigger(shipped):
    """The play is the one converge pipeline (`python -m sovkit.converge SITE`, with this checkout's Python) on the
    rendered inventory (which the converge writes where the kubeconfig fetch reads it); triggered by the hash of
    all its inputs."""
    site = shipped.site
    play = shipped.run.mocks.named(f"{site.name}-site-play")
    assert play.type_ == COMMAND
    python = shlex.quote(sys.executable)
    assert play.plain("create") == f"umask 077 && {python} -m sovkit.converge {shlex.quote(site.name)}"
    assert "ansible-playbook" not in play.plain("create")  # the converge pipeline runs the play, as `sovkit up` does
    assert play.plain("dir") == str(ROOT)
    inventory = play.plain("environment")["SOVKIT_INVENTORY"]
    if site.infrastructure.provider == "openstack":
        addresses = {n: h["address"] for n, h in shipped.run.outputs["nodes"].items()}
        volumes = {n: {DATA_VOLUME_VAR: v} for n, v in shipped.run.outputs["dataVolumes"].items()}
        assert inventory == with_addresses(render_inventory(site, addresses=addresses), addresses, volumes)
        # each host once, though groups list it again (serving, monitored; RKE2's servers, agents and GPU nodes)
        hosts = list({name: h for g in yaml.safe_load(inventory)["all"]["children"].values()
                      for name, h in g["hosts"].items()}.values())
        assert len(hosts) == len(site.nodes)
        assert all(ipaddress.ip_address(h["ansible_host"]) for h in hosts)  # the cloud's addresses, not names
        assert all(h["sovkit_address"] == h["ansible_host"] for h in hosts)  # services bind, certificates name it
    else:
        assert inventory == inventory_yaml(site)
    assert inventory == shipped.run.outputs["inventory"]
    config, _, _ = stack_environment(ROOT / "stacks" / f"Pulumi.{site.name}.yaml")
    plain = {k: v for k, v in config.items() if k not in shipped.run.secret_values}
    # an RKE2 site's etcd snapshot store credentials (Pulumi secrets here) are inputs too, by their digest
    etcd = site.platform.etcd_snapshot_credentials
    given = {field: shipped.run.secret_values[f"sovereign-ai:{ref.pulumi_secret}"] for field, ref in (
        ("accessKeyId", etcd.access_key_id), ("secretAccessKey", etcd.secret_access_key))} if etcd else None
    expected = config_hash(inventory, plain, ROOT, None, given)
    assert play.plain("triggers") == [expected]
    assert shipped.run.outputs["sitePlayTrigger"] == expected


def test_stack_config_of_trigger_leaves_secrets_out(shipped, monkeypatch):
    config, secret_keys, _ = stack_environment(ROOT / "stacks" / f"Pulumi.{shipped.name}.yaml")
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(secret_keys))
    plain = stack_config()
    assert not set(secret_keys) & set(plain)
    assert set(plain) == set(config) - set(secret_keys)


def test_onprem_and_local_sites_create_no_cloud_resources(existing_hosts_stack):
    shipped = existing_hosts_stack
    assert not [r for r in shipped.run.mocks.resources if r.type_.startswith(("openstack:", "pulumi:providers:open"))]
    addresses = {n.name: n.address or n.name for n in shipped.site.nodes}
    assert {n: h["address"] for n, h in shipped.run.outputs["nodes"].items()} == addresses


def test_hosts_mode_has_no_kubernetes_resources(hosts_stack):
    shipped = hosts_stack
    assert not [r for r in shipped.run.mocks.resources if r.type_.startswith(("kubernetes:", "pulumi:providers:kub"))]
    assert "kubeconfig" not in shipped.run.outputs
    assert [r.name for r in shipped.run.mocks.of_type(COMMAND)] == [f"{shipped.name}-site-play"]


# --- openstack ------------------------------------------------------------------------------------------


def test_openstack_servers_in_region_zone_with_metadata(openstack_stack):
    site, mocks = openstack_stack.site, openstack_stack.run.mocks
    infra = site.infrastructure
    servers = mocks.of_type(INSTANCE)
    assert sorted(s.name for s in servers) == sorted(n.name for n in site.nodes)
    for server in servers:
        role = next(n.role for n in site.nodes if n.name == server.name)
        group = infra.openstack_node_groups[role]
        assert server.plain("region") == infra.openstack_region
        assert server.plain("availabilityZone") == infra.openstack_availability_zone
        assert server.plain("flavorName") == group.flavor
        assert server.plain("imageId") == mock_image_id(group.image)  # the image the stack names, looked up
        assert server.plain("networks") == [{"name": infra.openstack_network}]
        assert server.plain("metadata") == {"sovkit-site": site.name, "sovkit-country": site.site.country,
                                            "sovkit-role": role}
    provider = mocks.of_type("pulumi:providers:openstack")
    assert len(provider) == 1
    assert provider[0].plain("region") == infra.openstack_region
    assert provider[0].plain("cloud") == infra.openstack_cloud


def test_openstack_volumes_are_of_the_encrypted_type(openstack_stack):
    site, mocks = openstack_stack.site, openstack_stack.run.mocks
    infra = site.infrastructure
    volumes = mocks.of_type(VOLUME)
    assert len(volumes) == len(site.nodes)
    for volume in volumes:
        role = volume.plain("metadata")["sovkit-role"]
        assert volume.plain("volumeType") == infra.openstack_volume_type
        assert volume.plain("size") == infra.openstack_node_groups[role].volume_gb
        assert volume.plain("availabilityZone") == infra.openstack_availability_zone
    # Attached at boot by the server's block device mapping (see test_openstack.py), not after it is up.
    assert not mocks.of_type("openstack:compute/volumeAttach:VolumeAttach")


def test_openstack_security_group_rules(openstack_stack):
    """SSH only from the admin networks, the API only from in-country networks, egress only in-country."""
    site = openstack_stack.site
    assert_security_group_rules(openstack_stack.run.mocks, site.residency, site.platform.mode)


def test_openstack_hosts_mode_security_group_opens_prometheus_to_admins():
    """The shipped OpenStack site runs Kubernetes; the same site in hosts mode (its GPU workers only, no RKE2)
    serves Prometheus (9090) on its first node, for the admin networks only, and has no Kubernetes API rule."""
    stack = "id-sulsel-cloud"
    config, secret_keys, _ = stack_environment(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
    run = run_program(stack, config=openstack_in_hosts_mode(config), secret_keys=secret_keys)
    assert_security_group_rules(run.mocks, load_stack(ROOT / "stacks" / f"Pulumi.{stack}.yaml").residency, "hosts")


def assert_security_group_rules(mocks, residency, mode: str) -> None:
    groups = mocks.of_type("openstack:networking/secGroup:SecGroup")
    assert len(groups) == 1
    assert groups[0].plain("deleteDefaultRules") is True  # no default egress to everywhere
    rules = [r.inputs for r in mocks.of_type(RULE)]
    by_port: dict[object, set] = {}
    for rule in rules:
        assert rule.get("remoteIpPrefix") not in ("0.0.0.0/0", "::/0")
        if rule.get("remoteIpPrefix") is None:
            assert rule.get("remoteGroupId"), rule  # only the site's own nodes
            continue
        by_port.setdefault((rule["direction"], rule.get("portRangeMin")), set()).add(rule["remoteIpPrefix"])
    assert by_port.pop(("ingress", 22)) == set(residency.admin_cidrs)
    assert by_port.pop(("ingress", 443)) == set(residency.in_country_cidrs)
    assert by_port.pop(("egress", None)) == set(residency.in_country_cidrs)
    assert by_port.pop(("egress", 80)) == {METADATA_CIDR}  # cloud-init's first boot reads the metadata service
    if mode == "kubernetes":
        assert by_port.pop(("ingress", 6443)) == set(residency.admin_cidrs)
    else:
        assert by_port.pop(("ingress", 9090)) == set(residency.admin_cidrs)  # Prometheus, operators only
    assert by_port == {}


def test_openstack_no_floating_ip_unless_enabled(openstack_stack):
    assert not openstack_stack.site.infrastructure.openstack_floating_ip
    assert not openstack_stack.run.mocks.of_type("openstack:networking/floatingIp:FloatingIp")


# --- kubernetes -----------------------------------------------------------------------------------------


def test_namespaces_enforce_restricted_pod_security(kubernetes_stack):
    """The kit's own namespaces are `restricted`; only node exporter's and the GPU vendor's, whose pods reach the
    host by design, are `privileged`, each with the reason written on it, and audited and warned on `restricted`."""
    namespaces = {r.plain("metadata")["name"]: r.plain("metadata")
                  for r in kubernetes_stack.run.mocks.of_type(NAMESPACE)}
    device = cluster.device_chart(kubernetes_stack.site)
    privileged = {cluster.NODE_EXPORTER_NAMESPACE, *([device.namespace] if device else [])}
    assert set(namespaces) == {SERVING_NAMESPACE, GATEWAY_NAMESPACE, MONITORING_NAMESPACE, *privileged}
    for name, meta in namespaces.items():
        labels = meta["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == ("privileged" if name in privileged else "restricted")
        assert bool(meta.get("annotations")) == (name in privileged)
        assert labels["pod-security.kubernetes.io/audit"] == "restricted"
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"


def test_network_policies_deny_by_default_and_egress_in_country(kubernetes_stack):
    site = kubernetes_stack.site
    policies = {(r.plain("metadata")["namespace"], r.plain("metadata")["name"]): r.plain("spec")
                for r in kubernetes_stack.run.mocks.of_type(POLICY)}
    allowed = set(site.residency.in_country_cidrs) | {site.platform.cluster_cidr}
    for namespace in (SERVING_NAMESPACE, GATEWAY_NAMESPACE, MONITORING_NAMESPACE):
        deny = policies[(namespace, "default-deny")]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        egress = policies[(namespace, "allow-in-country-egress")]["egress"]
        assert {peer["ipBlock"]["cidr"] for rule in egress for peer in rule["to"]} == allowed
    for spec in policies.values():
        blocks = [peer["ipBlock"]["cidr"] for key in ("egress", "ingress") for rule in spec.get(key, [])
                  for peer in rule.get("to", rule.get("from", [])) if "ipBlock" in peer]
        assert not [b for b in blocks if ipaddress.ip_network(b).prefixlen == 0]


def test_models_reach_only_gateway_and_prometheus(kubernetes_stack):
    policies = {(r.plain("metadata")["namespace"], r.plain("metadata")["name"]): r.plain("spec")
                for r in kubernetes_stack.run.mocks.of_type(POLICY)}
    peers = policies[(SERVING_NAMESPACE, "allow-ingress")]["ingress"][0]["from"]
    names = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers
             if "namespaceSelector" in p}
    assert names == {GATEWAY_NAMESPACE, MONITORING_NAMESPACE}
    assert not [p for p in peers if "ipBlock" in p]
    gateway = policies[(GATEWAY_NAMESPACE, "allow-ingress")]["ingress"][0]["from"]
    assert {p["ipBlock"]["cidr"] for p in gateway if "ipBlock" in p} == set(kubernetes_stack.site.residency
                                                                             .in_country_cidrs)


def test_every_model_key_the_values_reference_exists(kubernetes_stack, sovkit_values):
    """The chart reads VLLM_API_KEY from models.<name>.apiKeySecret: the platform creates that Secret."""
    secrets = {(r.plain("metadata")["namespace"], r.plain("metadata")["name"]): r
               for r in kubernetes_stack.run.mocks.of_type("kubernetes:core/v1:Secret")}
    models = sovkit_values(kubernetes_stack.name)["models"]
    assert models
    for model in models.values():
        ref = model["apiKeySecret"]
        assert set(secrets[(SERVING_NAMESPACE, ref["name"])].plain("stringData")) == {ref["key"]}


def test_serving_release_values_are_what_sovkit_values_prints(kubernetes_stack, sovkit_values):
    """One source of truth: the Helm release gets exactly the YAML `sovkit values STACK` prints."""
    site = kubernetes_stack.site
    release = kubernetes_stack.run.mocks.named(f"{site.name}-serving")
    assert release.plain("chart") == str(ROOT / SERVING_CHART)
    assert release.plain("namespace") == SERVING_NAMESPACE
    printed = sovkit_values(site.name)
    assert printed["models"].keys() == site.serving.models.keys()
    assert release.plain("values") == printed


def test_monitoring_release_from_in_country_mirror(kubernetes_stack):
    site = kubernetes_stack.site
    registry = site.residency.container_registry
    release = kubernetes_stack.run.mocks.named(f"{site.name}-monitoring")
    assert release.plain("chart") == f"oci://{registry}/charts/kube-prometheus-stack"
    assert release.plain("version") == MONITORING_CHART.version
    values = release.plain("values")
    assert values["global"]["imageRegistry"] == registry
    assert values["grafana"]["enabled"] is False
    assert values["nodeExporter"]["enabled"] is True
    assert values["prometheus"]["prometheusSpec"]["retention"] == f"{site.monitoring.monitoring_retention_days}d"
    assert values["prometheus"]["service"]["type"] == "ClusterIP"
    assert values["alertmanager"]["config"] == alerting.alertmanager_config(site)  # as hosts mode renders it


def test_kubeconfig_fetched_after_the_play(kubernetes_stack):
    name = kubernetes_stack.name
    fetch = kubernetes_stack.run.mocks.named(f"{name}-kubeconfig")
    assert f"-m sovkit.infra.kubeconfig {inventory_path(name)}" in fetch.plain("create")
    assert fetch.plain("triggers") == [kubernetes_stack.run.outputs["sitePlayTrigger"]]
    assert fetch.plain("logging") == "none"
