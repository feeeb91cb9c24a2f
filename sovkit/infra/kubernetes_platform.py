"""KubernetesPlatform (mode kubernetes): what runs in the cluster, on RKE2 from the site play or on an existing cluster.

A Kubernetes provider from the kubeconfig (a secret), the nodes labelled with their role and accelerator from the
stack, namespaces that Pod Security Admission holds to `restricted` (the node exporter's and the GPU vendor's,
which need the host, to `privileged`), default-deny NetworkPolicies that let egress reach in-country networks only,
the model servers' key and the model store's credentials as Secrets, the `sovkit-models` volume of a path store,
the vendor's device chart (GPU Operator or AMD device plugin), kube-prometheus-stack and, when a model spans nodes,
the LeaderWorkerSet controller, each from the in-country chart mirror (OCI in the site's registry) at its pinned
version, then the serving chart from this checkout with a Helm wait sized from its models, and the tenant gateway.
What each release gets is rendered in sovkit/render/cluster.py.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pydantic import BaseModel, ConfigDict, Field

from sovkit.config.site import SiteConfig
from sovkit.infra.cluster_gateway import ClusterGateway
from sovkit.render import cluster
from sovkit.render.cluster import GATEWAY_NAMESPACE, MONITORING_NAMESPACE, SERVING_NAMESPACE, ChartPin
from sovkit.render.values import CREDENTIALS_SECRET, EXISTING_CLAIM

TYPE = "sovkit:kubernetes:KubernetesPlatform"
SERVING_RELEASE = cluster.SERVING_RELEASE
PSA_LEVEL = "restricted"
# Namespaces whose pods need the host (hostNetwork, hostPath, privileged device plugins): Pod Security `privileged`,
# each holding only the vendor's or the exporter's own pods.
PRIVILEGED_REASON = "sovkit.io/pod-security-waiver"
INGRESS_CONTROLLER_NAMESPACE = "kube-system"  # RKE2's ingress controller runs there
MODEL_KEY_LENGTH = 48
MODELS_VOLUME_SIZE = "1Ti"  # a path store's volume: a claim on the storage node's export, not an allocation


def psa_labels(level: str = PSA_LEVEL) -> dict[str, str]:
    """Pod Security Admission: enforce the level, and audit and warn on `restricted` everywhere."""
    return {"pod-security.kubernetes.io/enforce": level, "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/audit": PSA_LEVEL, "pod-security.kubernetes.io/warn": PSA_LEVEL}


def _namespace_peer(name: str) -> dict:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def network_policies(egress_cidrs: list[str], ingress_cidrs: list[str],
                     ingress_namespaces: list[str]) -> dict[str, dict]:
    """NetworkPolicy specs by name: deny everything, then allow DNS, in-country egress and the named ingress."""
    policies: dict[str, dict] = {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [_namespace_peer("kube-system")],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]},
        "allow-in-country-egress": {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": cidr}} for cidr in egress_cidrs]}]},
        "allow-ingress": {
            "podSelector": {}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}, *(_namespace_peer(n) for n in ingress_namespaces),
                                  *({"ipBlock": {"cidr": cidr}} for cidr in ingress_cidrs)]}]},
    }
    return policies


class KubernetesPlatformArgs(BaseModel):
    """Inputs of the platform: the validated site, the cluster's kubeconfig, the serving chart and its values, and
    the secrets the stack names."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    site: SiteConfig = Field(description="The validated site")
    kubeconfig: Any = Field(description="Kubeconfig of the cluster (pulumi.Input[str]); made a secret here")
    chart_path: str = Field(description="Path of the serving chart (charts/sovkit-serving)")
    serving_values: dict[str, Any] = Field(description="Values of the serving chart (sovkit values)")
    chart_repository: str | None = Field(
        None, description="In-country OCI chart repository; default oci://<containerRegistry>/charts")
    tenant_keys: dict[str, Any] = Field(
        default_factory=dict, description="Tenant -> API key (pulumi.Input[str]); only their hashes reach the cluster")
    model_store_credentials: dict[str, Any] = Field(
        default_factory=dict, description="AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (pulumi.Input[str])")


class KubernetesPlatform(pulumi.ComponentResource):
    """Node labels, namespaces, policies, secrets, the models volume, the Helm releases and the gateway."""

    def __init__(self, name: str, args: KubernetesPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        site = args.site
        self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        self.provider = k8s.Provider(f"{name}-cluster", kubeconfig=self.kubeconfig, enable_server_side_apply=True,
                                     opts=pulumi.ResourceOptions(parent=self))
        self._name = name
        self.node_labels = [k8s.core.v1.NodePatch(
            f"{name}-node-{node}", metadata={"name": node, "labels": labels}, opts=self._opts())
            for node, labels in sorted(cluster.node_labels(site).items())]
        device = cluster.device_chart(site)
        lws = cluster.lws_chart(site) if cluster.spans_nodes(args.serving_values) else None
        levels = {SERVING_NAMESPACE: PSA_LEVEL, GATEWAY_NAMESPACE: PSA_LEVEL, MONITORING_NAMESPACE: PSA_LEVEL,
                  cluster.NODE_EXPORTER_NAMESPACE: "privileged"}
        if device is not None:
            levels[device.namespace] = "privileged"
        if lws is not None:
            levels[lws.namespace] = PSA_LEVEL
        self.namespaces = {ns: k8s.core.v1.Namespace(
            f"{name}-ns-{ns}", metadata={"name": ns, "labels": psa_labels(level), "annotations": {
                PRIVILEGED_REASON: "the pods here reach the host (hostNetwork, hostPath, devices) by design: "
                                   "node exporter or the GPU vendor's device plugin and toolkit"}
                                   if level != PSA_LEVEL else {}}, opts=self._opts())
            for ns, level in sorted(levels.items())}
        self.policies = self._policies(site)
        guarded: list[pulumi.Resource] = [*self.namespaces.values(), *self.policies.values()]
        self.model_keys, upstream_key = self._model_keys(args.serving_values, guarded)
        self.store = self._model_store(site, args, guarded)
        guarded += [*self.model_keys, *self.store]
        repository = (args.chart_repository or f"oci://{site.residency.container_registry.rstrip('/')}/charts"
                      ).rstrip("/")
        self.device = self._release(f"{name}-{device.chart}", device, repository, [*guarded, *self.node_labels]) \
            if device is not None else None
        self.monitoring = self._release(f"{name}-monitoring", cluster.MONITORING_CHART, repository, guarded,
                                        values=cluster.monitoring_values(site))
        self.lws = self._release(f"{name}-lws", lws, repository, guarded) if lws is not None else None
        # The serving chart's ServiceMonitors and rules need the monitoring CRDs, its pods the GPUs the device chart
        # makes schedulable and (multi-node) the LeaderWorkerSet CRD: it goes last, waiting as long as its models
        # take to fetch and load.
        before = [*guarded, *self.node_labels, self.monitoring, *(r for r in (self.device, self.lws) if r)]
        self.serving_timeout_s = cluster.release_timeout_s(args.serving_values)
        # Not atomic: a model whose weights fail their fetch or signature check stops alone (its pod held in its
        # init container, which says why), and `pulumi up` fails after the wait, while the other models serve (a
        # rolling update takes no old pod down before its replacement is ready). An atomic release would uninstall
        # every model of a first install, and roll back the others' upgrade, for one model's refusal.
        self.serving = k8s.helm.v3.Release(
            f"{name}-serving", name=SERVING_RELEASE, chart=args.chart_path, namespace=SERVING_NAMESPACE,
            create_namespace=False, atomic=False, timeout=self.serving_timeout_s, values=args.serving_values,
            opts=self._opts(depends_on=before))
        self.gateway = ClusterGateway(f"{name}-gateway", site, tenant_keys=args.tenant_keys, upstream_key=upstream_key,
                                      provider=self.provider, depends_on=[*guarded, self.serving],
                                      opts=pulumi.ResourceOptions(parent=self))
        self.monitoring_urls = {
            "prometheus": f"http://{cluster.MONITORING_CHART.release_name}-prometheus.{MONITORING_NAMESPACE}.svc:9090",
            "alertmanager": f"http://{cluster.MONITORING_CHART.release_name}-alertmanager.{MONITORING_NAMESPACE}"
                            ".svc:9093",
        }
        self.register_outputs({"namespaces": list(self.namespaces), "monitoring_urls": self.monitoring_urls,
                               "serving_release": self.serving.name, "monitoring_release": self.monitoring.name,
                               "endpoint": self.gateway.endpoint})

    def _opts(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=depends_on or [])

    def _policies(self, site: SiteConfig) -> dict[str, k8s.networking.v1.NetworkPolicy]:
        egress = sorted({*site.residency.in_country_cidrs, site.platform.cluster_cidr})
        # Who may connect in: the models hear the gateway and Prometheus only; the gateway hears in-country
        # callers (through the ingress controller or its LoadBalancer) and Prometheus; Prometheus hears its own.
        ingress = {
            SERVING_NAMESPACE: ([], [GATEWAY_NAMESPACE, MONITORING_NAMESPACE]),
            GATEWAY_NAMESPACE: (list(site.residency.in_country_cidrs),
                                [INGRESS_CONTROLLER_NAMESPACE, MONITORING_NAMESPACE]),
            MONITORING_NAMESPACE: ([], []),
        }
        policies: dict[str, k8s.networking.v1.NetworkPolicy] = {}
        for ns, (cidrs, peers) in ingress.items():
            for policy, spec in network_policies(egress, cidrs, peers).items():
                policies[f"{ns}/{policy}"] = k8s.networking.v1.NetworkPolicy(
                    f"{self._name}-{ns}-{policy}", metadata={"name": policy, "namespace": ns}, spec=spec,
                    opts=self._opts([self.namespaces[ns]]))
        return policies

    def _model_keys(self, values: dict[str, Any], guarded: list[pulumi.Resource]
                    ) -> tuple[list[pulumi.Resource], pulumi.Output[str]]:
        """The site's key to its model servers, random and kept in state as a secret, in the Secret each model's
        values name (models.<name>.apiKeySecret); the gateway presents it, as in hosts mode."""
        password = random.RandomPassword(f"{self._name}-model-server-key", length=MODEL_KEY_LENGTH, special=False,
                                         opts=pulumi.ResourceOptions(parent=self))
        key = pulumi.Output.secret(password.result)
        made: list[pulumi.Resource] = []
        for served, model in sorted((values.get("models") or {}).items()):
            ref = model.get("apiKeySecret") if isinstance(model, dict) else None
            if ref:
                made.append(k8s.core.v1.Secret(
                    f"{self._name}-{served}-api-key", metadata={"name": ref["name"], "namespace": SERVING_NAMESPACE},
                    type="Opaque", string_data={ref["key"]: key}, opts=self._opts(guarded)))
        return made, key

    def _model_store(self, site: SiteConfig, args: KubernetesPlatformArgs,
                     guarded: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """The S3 store's credentials in the Secret the chart's fetchers read, or a path store's volume: the storage
        node's NFS export of the store, read-only, bound to the claim the chart mounts."""
        values = args.serving_values.get("modelStore") or {}
        made: list[pulumi.Resource] = []
        if values.get("credentialsSecret") == CREDENTIALS_SECRET and args.model_store_credentials:
            made.append(k8s.core.v1.Secret(
                f"{self._name}-model-store", metadata={"name": CREDENTIALS_SECRET, "namespace": SERVING_NAMESPACE},
                type="Opaque", string_data={k: pulumi.Output.secret(v)
                                            for k, v in sorted(args.model_store_credentials.items())},
                opts=self._opts(guarded)))
        if values.get("existingClaim") == EXISTING_CLAIM:
            storage = site.nodes_with_role("storage")[0]
            volume = k8s.core.v1.PersistentVolume(
                f"{self._name}-models-volume", metadata={"name": f"{SERVING_NAMESPACE}-{EXISTING_CLAIM}"},
                spec={"capacity": {"storage": MODELS_VOLUME_SIZE}, "accessModes": ["ReadOnlyMany"],
                      "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                      "mountOptions": ["ro", "nfsvers=4.2"],
                      "nfs": {"server": storage.address or storage.name, "path": site.residency.model_store,
                              "readOnly": True}},
                opts=self._opts(guarded))
            made.append(volume)
            made.append(k8s.core.v1.PersistentVolumeClaim(
                f"{self._name}-models-claim", metadata={"name": EXISTING_CLAIM, "namespace": SERVING_NAMESPACE},
                spec={"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": volume.metadata.name,
                      "resources": {"requests": {"storage": MODELS_VOLUME_SIZE}}},
                opts=self._opts([*guarded, volume])))
        return made

    def _release(self, resource: str, pin: ChartPin, repository: str, depends_on: list[pulumi.Resource],
                 values: dict[str, Any] | None = None) -> k8s.helm.v3.Release:
        return k8s.helm.v3.Release(
            resource, name=pin.release_name, chart=f"{repository}/{pin.chart}", version=pin.version,
            namespace=pin.namespace, create_namespace=False, atomic=True,
            values=values if values is not None else pin.values, opts=self._opts(depends_on))
