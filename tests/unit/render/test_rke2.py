"""RKE2's files for the two shipped kubernetes sites, checked exactly against the values of their stacks: each node's
config.yaml, the audit policy, Pod Security admission, the CIS kernel parameters, where the artifacts come from and
what pins them; the inventory's RKE2 groups; the cluster token the converge pipeline makes and rke2-server's
environment (the etcd snapshot store's credentials); the kubeconfig's server."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sovkit.config import load_stack
from sovkit.config.rke2 import api_address, artifacts_url
from sovkit.config.schema import SecretRef
from sovkit.converge import ConvergeError, cluster_token, etcd_snapshot_credentials, play_variables
from sovkit.infra.kubeconfig import first_control_plane, point_at
from sovkit.render import rke2
from sovkit.render.cluster import ACCELERATOR_LABEL, ROLE_LABEL, device_chart
from sovkit.render.inventory import render_inventory
from sovkit.workspace import SiteWorkspace

ROOT = Path(__file__).resolve().parents[3]
ZA = load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")
ID = load_stack(ROOT / "stacks" / "Pulumi.id-sulsel-cloud.yaml")
PUNE = load_stack(ROOT / "stacks" / "Pulumi.in-mh-pune.yaml")
DIGEST = "sha256:6b1f5c3f0e1d2c9a8b7e4f3a2d1c0b9e8f7a6d5c4b3a29180f7e6d5c4b3a2918"  # the stacks' example pin
ID_ADDRESSES = {"id-sulsel-cloud-control-plane-1": "198.51.100.101",
                "id-sulsel-cloud-control-plane-2": "198.51.100.102",
                "id-sulsel-cloud-control-plane-3": "198.51.100.103",
                "id-sulsel-cloud-gpu-worker-1": "198.51.100.111", "id-sulsel-cloud-gpu-worker-2": "198.51.100.112"}


def node(site, name):
    return next(n for n in site.nodes if n.name == name)


def za_server(name: str, address: str, *, first: bool) -> dict:
    config = {
        "profile": "cis", "node-name": name, "token-file": "/etc/rancher/rke2/token",
        "node-label": [f"{ROLE_LABEL}=control_plane"],
        "write-kubeconfig-mode": "0600",
        "tls-san": sorted({"198.51.100.11", address}),
        "cluster-cidr": "10.42.0.0/16", "service-cidr": "10.43.0.0/16",
        "secrets-encryption": True,
        "audit-policy-file": "/etc/rancher/rke2/audit-policy.yaml",
        "pod-security-admission-config-file": "/etc/rancher/rke2/pod-security.yaml",
        "kube-apiserver-arg": ["audit-log-path=/var/lib/rancher/rke2/server/logs/audit.log",
                               "audit-log-maxage=400", "audit-log-maxbackup=0"],  # za's logRetentionDays
        "etcd-snapshot-schedule-cron": "0 */6 * * *", "etcd-snapshot-retention": 28,
        # za's stateBackend: s3://pulumi-state?endpoint=objects.dc.gov.example&s3ForcePathStyle=true
        "etcd-s3": True, "etcd-s3-endpoint": "objects.dc.gov.example", "etcd-s3-bucket": "pulumi-state",
        "etcd-s3-folder": "etcd-snapshots/za-national-dc",
    }
    if not first:
        config["server"] = "https://198.51.100.11:9345"
    return config


def test_za_servers_exactly():
    assert rke2.node_config(ZA, node(ZA, "cp-01")) == za_server("cp-01", "198.51.100.11", first=True)
    assert rke2.node_config(ZA, node(ZA, "cp-02")) == za_server("cp-02", "198.51.100.12", first=False)
    assert rke2.node_config(ZA, node(ZA, "cp-03")) == za_server("cp-03", "198.51.100.13", first=False)


@pytest.mark.parametrize(("name", "labels"), [
    ("gpu-01", [f"{ACCELERATOR_LABEL}=H100-SXM5-80GB", f"{ROLE_LABEL}=gpu_worker"]),
    ("gpu-02", [f"{ACCELERATOR_LABEL}=H100-SXM5-80GB", f"{ROLE_LABEL}=gpu_worker"]),
    ("store-01", [f"{ROLE_LABEL}=storage"]),
])
def test_za_agents_exactly(name, labels):
    assert rke2.node_config(ZA, node(ZA, name)) == {
        "profile": "cis", "node-name": name, "token-file": "/etc/rancher/rke2/token", "node-label": labels,
        "server": "https://198.51.100.11:9345"}


def test_id_sulsel_with_the_addresses_its_cloud_gave():
    first = rke2.node_config(ID, node(ID, "id-sulsel-cloud-control-plane-1"), ID_ADDRESSES)
    assert "server" not in first
    assert first["tls-san"] == ["198.51.100.101"]
    assert first["kube-apiserver-arg"][1] == "audit-log-maxage=365"  # the id profile's retention (no stack value)
    assert {k: v for k, v in first.items() if k.startswith("etcd-s3")} == {
        "etcd-s3": True, "etcd-s3-endpoint": "object.cloud.go.example", "etcd-s3-bucket": "sovkit-state",
        "etcd-s3-folder": "etcd-snapshots/id-sulsel-cloud", "etcd-s3-region": "id-mks-1"}
    second = rke2.node_config(ID, node(ID, "id-sulsel-cloud-control-plane-2"), ID_ADDRESSES)
    assert second["server"] == "https://198.51.100.101:9345"
    assert second["tls-san"] == ["198.51.100.101", "198.51.100.102"]
    assert rke2.node_config(ID, node(ID, "id-sulsel-cloud-gpu-worker-1"), ID_ADDRESSES) == {
        "profile": "cis", "node-name": "id-sulsel-cloud-gpu-worker-1", "token-file": "/etc/rancher/rke2/token",
        "node-label": [f"{ACCELERATOR_LABEL}=MI210-64GB", f"{ROLE_LABEL}=gpu_worker"],
        "server": "https://198.51.100.101:9345"}


def test_the_api_address_the_stack_names_is_in_the_certificate_the_join_and_the_kubeconfig():
    site = dataclasses.replace(ZA, platform=ZA.platform.model_copy(update={"rke2_api_address": "k8s.dc.gov.example"}))
    config = rke2.node_config(site, node(site, "cp-02"))
    assert config["tls-san"] == ["198.51.100.12", "k8s.dc.gov.example"]
    assert config["server"] == "https://k8s.dc.gov.example:9345"
    inventory = render_inventory(site)
    name, address = first_control_plane(inventory)
    assert (name, address) == ("cp-01", "k8s.dc.gov.example")
    rke2_yaml = "clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n"
    assert point_at(rke2_yaml, address) == "clusters:\n- cluster:\n    server: https://k8s.dc.gov.example:6443\n"
    assert rke2.kubeconfig_server(site) == "https://k8s.dc.gov.example:6443"


def test_by_default_the_api_is_the_first_servers_address():
    assert api_address(ZA) == "198.51.100.11"
    assert first_control_plane(render_inventory(ZA)) == ("cp-01", "198.51.100.11")
    assert api_address(ID, ID_ADDRESSES) == "198.51.100.101"


def test_audit_policy_keeps_secret_bodies_out_of_the_log():
    assert rke2.audit_policy() == {
        "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata", "resources": [
            {"group": "", "resources": ["secrets", "serviceaccounts/token"]},
            {"group": "authentication.k8s.io", "resources": ["tokenreviews"]}]},
            {"level": "Request"}]}


def test_pod_security_is_restricted_cluster_wide_exempting_only_kube_system():
    config = rke2.pod_security()["plugins"][0]["configuration"]
    assert {config["defaults"][mode] for mode in ("enforce", "audit", "warn")} == {"restricted"}
    assert config["exemptions"] == {"usernames": [], "runtimeClasses": [], "namespaces": ["kube-system"]}


def test_cis_kernel_parameters_are_rke2s():
    assert rke2.CIS_SYSCTLS == {"vm.panic_on_oom": "0", "vm.overcommit_memory": "1", "kernel.panic": "10",
                                "kernel.panic_on_oops": "1"}


@pytest.mark.parametrize(("site", "url"), [
    (ZA, "https://mirror.dc.gov.example/rke2/v1.33.5+rke2r1/"),
    (ID, "https://mirror.cloud.go.example/rke2/v1.33.5+rke2r1/"),
])
def test_artifacts_come_from_the_in_country_mirror_pinned_by_the_stack(site, url):
    assert artifacts_url(site) == url
    variables = render_inventory(site)["all"]["vars"]
    assert variables["rke2_artifacts_url"] == url
    assert variables["rke2_checksums_sha256"] == DIGEST
    assert variables["rke2_artifact_files"] == {"tarball": "rke2.linux-amd64.tar.gz",
                                                "images": "rke2-images.linux-amd64.tar.zst",
                                                "checksums": "sha256sum-amd64.txt"}
    assert variables["rke2_staging_dir"] == "/var/lib/sovkit/rke2/v1.33.5+rke2r1"
    assert variables["rke2_install_enabled"] is True


def test_a_file_mirror_puts_the_artifacts_beside_the_bundles_apt_folder():
    site = dataclasses.replace(ZA, residency=ZA.residency.model_copy(update={
        "apt_mirror": "file:///srv/sovkit/bundle/apt"}))
    assert artifacts_url(site) == "file:///srv/sovkit/bundle/rke2/v1.33.5+rke2r1/"


def test_inventory_groups_servers_in_join_order_then_agents_and_gpu_nodes():
    children = render_inventory(ZA)["all"]["children"]
    assert list(children["rke2_servers"]["hosts"]) == ["cp-01", "cp-02", "cp-03"]
    assert list(children["rke2_agents"]["hosts"]) == ["gpu-01", "gpu-02", "store-01"]
    assert list(children["rke2_gpu_nodes"]["hosts"]) == ["gpu-01", "gpu-02"]
    gpu = children["gpu_worker"]["hosts"]["gpu-01"]
    assert gpu["rke2_server"] is False and gpu["rke2_config"] == rke2.node_config(ZA, node(ZA, "gpu-01"))
    assert gpu["accelerator_expected_count"] == 8 and gpu["accelerator_expected_model"] == "H100-SXM5-80GB"
    inventory = render_inventory(ZA)  # the token is the converge pipeline's, never the inventory's
    hosts = [host or {} for group in inventory["all"]["children"].values() for host in group["hosts"].values()]
    assert "rke2_token" not in inventory["all"]["vars"] and not any("rke2_token" in host for host in hosts)


def test_hosts_mode_sites_have_no_rke2():
    inventory = render_inventory(PUNE)
    assert not {g for g in inventory["all"]["children"] if g.startswith("rke2_")}
    assert not {v for v in inventory["all"]["vars"] if v.startswith("rke2_")}


def test_the_cluster_token_is_made_once_per_site(tmp_path):
    workspace = SiteWorkspace.of(ZA.name, tmp_path)
    token = play_variables(ZA, workspace, {}, ETCD_GIVEN)["rke2_token"]
    assert len(token) >= 32 and token == cluster_token(workspace)
    assert (workspace.secrets / "rke2-token").stat().st_mode & 0o777 == 0o600


# -- etcd snapshots to the state store: the credentials rke2-server reads from /etc/default/rke2-server ---------------
ETCD_GIVEN = {"accessKeyId": "AKIAZASNAPSHOTS0001", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCY/za-etcd"}


def test_rke2_servers_environment_holds_the_snapshot_stores_credentials_under_etcd_s3s_names(tmp_path):
    """What Pulumi read (SOVKIT_ETCD_SNAPSHOT_CREDENTIALS) becomes the file's exact content, by the names etcd-s3
    reads; it travels in the play's 0600 variables file, never the inventory."""
    variables = play_variables(ZA, SiteWorkspace.of(ZA.name, tmp_path), {}, ETCD_GIVEN)
    assert variables["rke2_server_environment"] == ("AWS_ACCESS_KEY_ID=AKIAZASNAPSHOTS0001\n"
                                                    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCY/za-etcd\n")
    inventory = render_inventory(ZA)
    assert ETCD_GIVEN["secretAccessKey"] not in repr(inventory)
    assert inventory["all"]["vars"]["rke2_server_environment_file"] == rke2.SERVER_ENVIRONMENT_FILE == \
        "/etc/default/rke2-server"


def test_the_credentials_may_be_files_on_this_machine(tmp_path):
    key_id, secret = tmp_path / "etcd-key-id", tmp_path / "etcd-secret"
    key_id.write_text("minio-etcd\n")
    secret.write_text("s3cr3t-from-a-file\n")
    creds = ZA.platform.etcd_snapshot_credentials.model_copy(update={
        "access_key_id": SecretRef(file=str(key_id)), "secret_access_key": SecretRef(file=str(secret))})
    site = dataclasses.replace(ZA, platform=ZA.platform.model_copy(update={"etcd_snapshot_credentials": creds}))
    assert etcd_snapshot_credentials(site, {}) == {"AWS_ACCESS_KEY_ID": "minio-etcd",
                                                   "AWS_SECRET_ACCESS_KEY": "s3cr3t-from-a-file"}
    secret.unlink()
    with pytest.raises(ConvergeError, match=r"etcdSnapshotCredentials\.secretAccessKey\.file names .*etcd-secret, "
                                            r"which cannot be read"):
        etcd_snapshot_credentials(site, {})


def test_a_pulumi_secret_the_converge_was_not_given_is_refused_before_the_play(tmp_path):
    with pytest.raises(ConvergeError, match=r"etcdSnapshotCredentials\.accessKeyId is the Pulumi secret "
                                            r"etcdSnapshotKeyId, which SOVKIT_ETCD_SNAPSHOT_CREDENTIALS does not hold"):
        play_variables(ZA, SiteWorkspace.of(ZA.name, tmp_path), {}, {})


@pytest.mark.parametrize("bad", ["", "two words", 'a"quote', "a$dollar", "back\\slash", "two\nlines", "ünïcode"])
def test_a_value_systemd_would_read_otherwise_is_refused_never_shown(bad):
    with pytest.raises(ConvergeError) as caught:
        etcd_snapshot_credentials(ZA, {**ETCD_GIVEN, "secretAccessKey": bad})
    assert "etcdSnapshotCredentials.secretAccessKey has " in str(caught.value)
    assert bad not in str(caught.value) or not bad


def test_snapshots_kept_on_the_servers_need_no_environment(tmp_path):
    """A file:// state store: no etcd-s3 in config.yaml, and rke2_server_environment empty (the role removes the
    file)."""
    res = ZA.residency.model_copy(update={"state_backend": "file:///srv/sovkit/pulumi-state"})
    site = dataclasses.replace(ZA, residency=res, platform=ZA.platform.model_copy(
        update={"etcd_snapshot_credentials": None}))
    assert not {k for k in rke2.node_config(site, node(site, "cp-01")) if k.startswith("etcd-s3")}
    assert play_variables(site, SiteWorkspace.of(site.name, tmp_path), {}, ETCD_GIVEN)["rke2_server_environment"] \
        == ""
    assert rke2.server_environment({}) == ""


def test_nvidias_toolkit_configures_rke2s_containerd():
    env = {e["name"]: e["value"] for e in device_chart(ZA).values["toolkit"]["env"]}
    assert env == {"CONTAINERD_SOCKET": "/run/k3s/containerd/containerd.sock",
                   "CONTAINERD_CONFIG": "/var/lib/rancher/rke2/agent/etc/containerd/config-v3.toml.tmpl",
                   "CONTAINERD_RUNTIME_CLASS": "nvidia", "CONTAINERD_SET_AS_DEFAULT": "true"}
    assert device_chart(ZA).values["toolkit"]["enabled"] is True
