"""RKE2's files on a node, pure functions of the site (the rke2 role writes them as given): /etc/rancher/rke2/
config.yaml per node, the API server's audit policy, the Pod Security admission configuration, the kernel
parameters RKE2's CIS profile requires, and where the air-gap artifacts come from and go.

Sources: docs.rke2.io "Air-Gap Install" (tarball method), "CIS Hardening Guide" (the etcd user, the sysctls of
rke2-cis-sysctl.conf), "Pod Security Standards", "Audit Policy" and "Etcd Snapshots" (S3).
"""

from __future__ import annotations

from collections.abc import Mapping

from sovkit import ports
from sovkit.config import SiteConfig
from sovkit.config.rke2 import ARTIFACTS, CHECKSUMS, IMAGES, TARBALL, api_address, artifacts_url, snapshot_store
from sovkit.config.site import Node
from sovkit.render.cluster import node_labels

CONFIG_DIR = "/etc/rancher/rke2"
CONFIG_FILE = f"{CONFIG_DIR}/config.yaml"
TOKEN_FILE = f"{CONFIG_DIR}/token"  # the cluster token, 0600; config.yaml names it (token-file), never holds it
AUDIT_POLICY_FILE = f"{CONFIG_DIR}/audit-policy.yaml"
POD_SECURITY_FILE = f"{CONFIG_DIR}/pod-security.yaml"
SERVER_ENVIRONMENT_FILE = "/etc/default/rke2-server"  # rke2-server.service's EnvironmentFile; root 0600, servers only
# The names etcd-s3 reads its credentials from (docs.rke2.io "Etcd Snapshots", S3: --etcd-s3-access-key and
# --etcd-s3-secret-key default to these variables); the kit keeps them out of config.yaml.
SERVER_ENVIRONMENT_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
KUBECONFIG_FILE = f"{CONFIG_DIR}/rke2.yaml"  # what sovkit/infra/kubeconfig.py reads from the first server
SYSCTL_FILE = "/etc/sysctl.d/60-rke2-cis.conf"  # the file name RKE2's CIS guide copies rke2-cis-sysctl.conf to
STAGING_DIR = "/var/lib/sovkit/rke2"  # artifacts land here, per release, and are verified before anything unpacks
INSTALL_PREFIX = "/usr/local"  # the tarball's bin/, lib/systemd/system/ and share/ go under it (install.sh's default)
IMAGES_DIR = "/var/lib/rancher/rke2/agent/images"  # RKE2 imports the images archive found here at start
AUDIT_LOG = "/var/lib/rancher/rke2/server/logs/audit.log"
# The kernel parameters of RKE2's CIS profile (share/rke2/rke2-cis-sysctl.conf): the kubelet refuses to start
# with profile: cis unless they hold. Not namespaced: set on the host, never from inside a container.
CIS_SYSCTLS = {"vm.panic_on_oom": "0", "vm.overcommit_memory": "1", "kernel.panic": "10", "kernel.panic_on_oops": "1"}
ETCD_USER = "etcd"  # CIS profile: etcd's data directory is owned by this unprivileged user on servers
SNAPSHOT_SCHEDULE = "0 */6 * * *"  # every six hours
SNAPSHOT_RETENTION = 28  # a week of them, on the node and in the store
# Exempt from the cluster-wide `restricted` level: only RKE2's own components (kube-proxy, CNI, CoreDNS run there).
POD_SECURITY_EXEMPT_NAMESPACES = ("kube-system",)


def audit_policy() -> dict:
    """Who did what to the API: Secrets (and the tokens minted or reviewed) at Metadata, so that no secret body is
    ever written to the log; every other request at Request level (its body, no response)."""
    secret_bearing = [{"group": "", "resources": ["secrets", "serviceaccounts/token"]},
                      {"group": "authentication.k8s.io", "resources": ["tokenreviews"]}]
    return {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
            "rules": [{"level": "Metadata", "resources": secret_bearing},
                      {"level": "Request"}]}


def pod_security() -> dict:
    """The Pod Security admission configuration: `restricted` enforced, audited and warned cluster-wide, only
    kube-system exempt. A namespace that needs more (the node exporter's, the GPU vendor's) says so in its own
    labels, where the cluster's objects create it."""
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
            "plugins": [{"name": "PodSecurity", "configuration": {
                "apiVersion": "pod-security.admission.config.k8s.io/v1", "kind": "PodSecurityConfiguration",
                "defaults": {"enforce": "restricted", "enforce-version": "latest", "audit": "restricted",
                             "audit-version": "latest", "warn": "restricted", "warn-version": "latest"},
                "exemptions": {"usernames": [], "runtimeClasses": [],
                               "namespaces": list(POD_SECURITY_EXEMPT_NAMESPACES)}}}]}


def etcd_snapshots(site: SiteConfig) -> dict:
    """etcd snapshots on schedule, kept on the node and, where the site keeps its Pulumi state in an in-country S3
    store (`sovkit validate` has judged its endpoint), copied there under etcd-snapshots/<site>. The state store,
    not the model store: a snapshot holds the cluster's secrets (encrypted), and the model store's credentials are
    the fetchers'. Credentials: the stack's etcdSnapshotCredentials, in rke2-server's environment
    (server_environment)."""
    out: dict = {"etcd-snapshot-schedule-cron": SNAPSHOT_SCHEDULE, "etcd-snapshot-retention": SNAPSHOT_RETENTION}
    store = snapshot_store(site)
    if store is None:
        return out
    out.update({"etcd-s3": True, "etcd-s3-endpoint": store.endpoint, "etcd-s3-bucket": store.bucket,
                "etcd-s3-folder": f"etcd-snapshots/{site.name}"})
    if store.region:
        out["etcd-s3-region"] = store.region
    return out


def server_environment(credentials: Mapping[str, str]) -> str:
    """/etc/default/rke2-server, which the release's rke2-server.service reads (EnvironmentFile=-/etc/default/
    rke2-server): the etcd snapshot store's credentials as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the names
    etcd-s3 reads; "" when the site copies no snapshot to S3 (the role then removes the file). The converge has
    refused a value systemd would read otherwise than written (checks.environment_value: no space, quote, backslash
    or $), so each is written as it is."""
    return "".join(f"{name}={credentials[name]}\n" for name in SERVER_ENVIRONMENT_NAMES) if credentials else ""


def servers(site: SiteConfig) -> list[Node]:
    """The control-plane nodes, in the order they join: the first initialises the cluster."""
    return sorted(site.nodes_with_role("control_plane"), key=lambda n: n.name)


def agents(site: SiteConfig) -> list[Node]:
    return sorted((n for n in site.nodes if n.role != "control_plane"), key=lambda n: n.name)


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def node_config(site: SiteConfig, node: Node, addresses: Mapping[str, str] | None = None) -> dict:
    """/etc/rancher/rke2/config.yaml of `node`: the CIS profile, its labels from the stack, the join address for
    every node but the first server, and on servers the API's certificate names, networks, secrets encryption, the
    audit policy (logs kept as long as the site keeps logs), Pod Security admission and etcd snapshots."""
    addresses = addresses or {}
    api = api_address(site, addresses) or servers(site)[0].name
    first = servers(site)[0]
    labels = node_labels(site)[node.name]
    config: dict = {"profile": "cis", "node-name": node.name, "token-file": TOKEN_FILE,
                    "node-label": [f"{k}={v}" for k, v in sorted(labels.items())]}
    if node.name != first.name:
        config["server"] = f"https://{_bracket(api)}:{ports.RKE2_SUPERVISOR}"
    if node.role != "control_plane":
        return config
    own = addresses.get(node.name) or node.address
    config.update({
        "write-kubeconfig-mode": "0600",
        "tls-san": sorted({api, *([own] if own else [])}),
        "cluster-cidr": site.platform.cluster_cidr,
        "service-cidr": site.platform.service_cidr,
        "secrets-encryption": True,
        "audit-policy-file": AUDIT_POLICY_FILE,
        "pod-security-admission-config-file": POD_SECURITY_FILE,
        "kube-apiserver-arg": [f"audit-log-path={AUDIT_LOG}", f"audit-log-maxage={site.log_retention_days}",
                               "audit-log-maxbackup=0"],
        **etcd_snapshots(site),
    })
    return config


def kubeconfig_server(site: SiteConfig, addresses: Mapping[str, str] | None = None) -> str | None:
    """The API server Pulumi's kubeconfig names: the API address the stack names (or the first server's)."""
    api = api_address(site, addresses)
    return f"https://{_bracket(api)}:{ports.KUBE_API}" if api else None


def artifacts(site: SiteConfig) -> dict:
    """Where the release's artifacts come from (the in-country mirror's folder), what they are called, what pins
    them (the stack's digest of the checksum file) and where they are staged and verified."""
    return {"url": artifacts_url(site), "checksums_sha256": site.platform.rke2_checksums_sha256 or "",
            "files": {"tarball": TARBALL, "images": IMAGES, "checksums": CHECKSUMS},
            "staging_dir": f"{STAGING_DIR}/{site.platform.rke2_version}"}


__all__ = ["ARTIFACTS", "artifacts", "audit_policy", "etcd_snapshots", "node_config", "pod_security",
           "server_environment"]
