"""Kubernetes mode's rules: the Kubernetes releases the kit deploys to, the model store's credentials and a path
store's volume. What the cluster's objects and charts would refuse, `sovkit validate` refuses here first."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sovkit.config.schema import PROJECT, SecretRef
from sovkit.config.site import SiteConfig
from sovkit.errors import Problem, short

# The Kubernetes minor releases the kit's charts and objects are rendered for and checked against (the serving chart's
# kubeVersion is the first; the last is the newest whose schemas the tests validate them with). An RKE2 site runs its
# rke2Version's release; an existing cluster may run any of them.
KUBERNETES_MINORS: tuple[int, ...] = tuple(range(30, 34))


def s3_store(site: SiteConfig) -> bool:
    return site.residency.model_store.startswith("s3://")


def path_store(site: SiteConfig) -> bool:
    return not re.match(r"^(s3|https?)://", site.residency.model_store)


def kubernetes_versions(site: SiteConfig) -> list[str]:
    """The Kubernetes releases (1.N) the site's cluster may run: its RKE2 release's, or every one the kit supports
    on an existing cluster."""
    rke2 = site.platform.rke2_version
    if rke2 and site.platform.kubeconfig is None:
        return [rke2.removeprefix("v").split("+")[0].rsplit(".", 1)[0]]
    return [f"1.{minor}" for minor in KUBERNETES_MINORS]


def secret_refs(site: SiteConfig) -> dict[str, SecretRef]:
    """Every secret the kubernetes path reads, by its stack key path."""
    refs: dict[str, SecretRef] = {}
    if site.platform.kubeconfig is not None:
        refs["kubeconfig"] = site.platform.kubeconfig
    creds = site.residency.model_store_credentials
    if creds is not None:
        refs["modelStoreCredentials.accessKeyId"] = creds.access_key_id
        refs["modelStoreCredentials.secretAccessKey"] = creds.secret_access_key
    etcd = site.platform.etcd_snapshot_credentials
    if etcd is not None:
        refs["etcdSnapshotCredentials.accessKeyId"] = etcd.access_key_id
        refs["etcdSnapshotCredentials.secretAccessKey"] = etcd.secret_access_key
    return refs


def _key(path: str) -> str:
    return f"{PROJECT}:{path}"


def kubernetes_release(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    rke2 = site.platform.rke2_version
    if site.platform.mode != "kubernetes" or not rke2:
        return
    minor = int(kubernetes_versions(site)[0].split(".")[1])
    if minor not in KUBERNETES_MINORS:
        yield Problem(_key("rke2Version"), rke2, f"an RKE2 release of Kubernetes 1.{KUBERNETES_MINORS[0]} to "
                      f"1.{KUBERNETES_MINORS[-1]} (what the kit's charts are rendered and checked for)")


def model_store_access(site: SiteConfig, plain_keys: frozenset[str]) -> Iterable[Problem]:
    """The cluster's fetchers read an S3 store with the stack's credentials (the chart's `sovkit-model-store`
    Secret); a path store is mounted from the storage node's export as the `sovkit-models` volume."""
    if site.platform.mode != "kubernetes":
        return
    creds = site.residency.model_store_credentials
    if s3_store(site) and creds is None:
        yield Problem(_key("modelStoreCredentials"), "nothing", "the S3 store's access key id and secret access key, "
                      "each as {pulumiSecret: NAME} or {file: /absolute/path}",
                      fix="pulumi config set --secret NAME ...; the fetchers read the store with them")
    elif creds is not None and not s3_store(site):
        yield Problem(_key("modelStoreCredentials"), "set", f"only with an s3:// modelStore "
                      f"({short(site.residency.model_store)} is read without them)")
    if path_store(site) and not site.nodes_with_role("storage"):
        yield Problem(_key("modelStore"), short(site.residency.model_store),
                      "an s3:// or https:// store, or a path on a storage node (which exports it to the cluster)",
                      fix="add a host with role storage that holds the store")
    for path, ref in secret_refs(site).items():
        if ref.pulumi_secret and f"{PROJECT}:{ref.pulumi_secret}" in plain_keys:
            yield Problem(_key(ref.pulumi_secret), "a secret in plain text", "a secret config value",
                          fix=f"remove it and run: pulumi config set --secret {ref.pulumi_secret} <value> "
                              f"(named by {path})")


def gateway_exposure(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """The Ingress routes the gateway's name (and presents its certificate for it): it needs the name."""
    if site.platform.mode == "kubernetes" and site.platform.gateway_exposure == "ingress" \
            and not site.platform.gateway_hostname:
        yield Problem(_key("gatewayHostname"), "nothing", "the name callers reach the gateway by, such as "
                      "ai.gov.example (the Ingress host, in the gateway's certificate)",
                      fix="or set gatewayExposure: loadBalancer")


RULES = (kubernetes_release, model_store_access, gateway_exposure)
