"""KubernetesPlatform (mode kubernetes): the serving stack on the RKE2 cluster the site play bootstrapped.

A Kubernetes provider from the bootstrap's kubeconfig (a secret), namespaces that Pod Security Admission holds to
`restricted`, default-deny NetworkPolicies that let egress reach in-country networks only, tenant API keys and the
per-model keys the serving chart's values reference as Kubernetes Secrets, the serving chart from this checkout as
a Helm release, and kube-prometheus-stack from the in-country chart mirror (OCI in the site's container registry)
with its images from the same registry.

Namespaces follow the serving chart's defaults (its NetworkPolicies admit the gateway from `sovkit-gateway` and
Prometheus from `monitoring`), so the two agree without overriding its values.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pydantic import BaseModel, ConfigDict, Field

TYPE = "sovkit:kubernetes:KubernetesPlatform"
SERVING_NAMESPACE = "sovkit-serving"
GATEWAY_NAMESPACE = "sovkit-gateway"
MONITORING_NAMESPACE = "monitoring"
SERVING_RELEASE = "sovkit-serving"
MONITORING_RELEASE = "kube-prometheus-stack"
MONITORING_CHART = "kube-prometheus-stack"
# The version the offline bundle carries into the in-country mirror; bump both together.
MONITORING_CHART_VERSION = "85.1.3"
TENANT_KEYS_SECRET = "sovkit-tenant-keys"
PSA_LEVEL = "restricted"
INGRESS_CONTROLLER_NAMESPACE = "kube-system"  # RKE2's ingress controller runs there
MODEL_KEY_LENGTH = 48


def psa_labels() -> dict[str, str]:
    """Pod Security Admission: enforce `restricted`, and audit and warn on it too."""
    return {f"pod-security.kubernetes.io/{mode}": PSA_LEVEL for mode in ("enforce", "audit", "warn")} | {
        "pod-security.kubernetes.io/enforce-version": "latest"}


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


def monitoring_values(registry: str, retention_days: int, webhooks: dict[str, str]) -> dict[str, Any]:
    """kube-prometheus-stack values: every image from the in-country registry, nothing exposed, no phone-home."""
    receivers = [{"name": "null"}] + [{"name": name, "webhook_configs": [{"url": url, "send_resolved": True}]}
                                      for name, url in sorted(webhooks.items())]
    route: dict[str, Any] = {"receiver": "null", "group_by": ["alertname", "namespace"]}
    if webhooks:
        route["routes"] = [{"receiver": name, "continue": True, "matchers": ['severity=~"warning|critical"']}
                           for name in sorted(webhooks)]
    cluster_ip = {"type": "ClusterIP"}
    return {
        "global": {"imageRegistry": registry},
        # The operator's own Grafana reads the dashboards (ConfigMaps); none runs here to phone home.
        "grafana": {"enabled": False},
        "forceDeployDashboards": True,
        # Host metrics come from the node exporter the site play installs; a hostNetwork DaemonSet would
        # break the namespace's `restricted` Pod Security level.
        "nodeExporter": {"enabled": False},
        "prometheus": {
            "service": cluster_ip,
            "prometheusSpec": {
                "retention": f"{retention_days}d",
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
            },
        },
        "alertmanager": {"service": cluster_ip, "config": {"route": route, "receivers": receivers}},
    }


class KubernetesPlatformArgs(BaseModel):
    """Inputs of the platform; the serving chart and its values come in as arguments."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    site_name: str = Field(description="Site name")
    kubeconfig: Any = Field(description="Kubeconfig of the cluster (pulumi.Input[str]); made a secret here")
    container_registry: str = Field(description="In-country registry every image must come from")
    chart_path: str = Field(description="Path of the serving chart (charts/sovkit-serving)")
    serving_values: dict[str, Any] = Field(description="Values of the serving chart (sovkit values)")
    chart_repository: str | None = Field(
        None, description="In-country OCI chart repository; default oci://<containerRegistry>/charts")
    in_country_cidrs: list[str] = Field(description="Networks pods may reach, and the API is called from")
    cluster_cidr: str = Field(description="Pod network (intra-cluster traffic)")
    monitoring_retention_days: int = Field(description="Days Prometheus keeps metrics")
    alert_webhooks: dict[str, str] = Field(default_factory=dict, description="Alert receivers: name -> URL")
    tenant_keys: dict[str, Any] = Field(
        default_factory=dict, description="Tenant -> API key (pulumi.Input[str]); stored as a secret")


class KubernetesPlatform(pulumi.ComponentResource):
    """Namespaces, policies, tenant keys and the two Helm releases of the serving platform."""

    def __init__(self, name: str, args: KubernetesPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        self.provider = k8s.Provider(f"{name}-cluster", kubeconfig=self.kubeconfig, enable_server_side_apply=True,
                                     opts=pulumi.ResourceOptions(parent=self))
        opts_k8s = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.namespaces = {
            ns: k8s.core.v1.Namespace(f"{name}-ns-{ns}", metadata={"name": ns, "labels": psa_labels()}, opts=opts_k8s)
            for ns in (SERVING_NAMESPACE, GATEWAY_NAMESPACE, MONITORING_NAMESPACE)
        }
        egress = sorted({*args.in_country_cidrs, args.cluster_cidr})
        # Who may connect in: the models hear the gateway and Prometheus only; the gateway hears in-country
        # callers (through the ingress controller) and Prometheus; Prometheus hears its own namespace.
        ingress = {
            SERVING_NAMESPACE: ([], [GATEWAY_NAMESPACE, MONITORING_NAMESPACE]),
            GATEWAY_NAMESPACE: (list(args.in_country_cidrs), [INGRESS_CONTROLLER_NAMESPACE, MONITORING_NAMESPACE]),
            MONITORING_NAMESPACE: ([], []),
        }
        self.policies: dict[str, k8s.networking.v1.NetworkPolicy] = {}
        for ns, (cidrs, peers) in ingress.items():
            for policy, spec in network_policies(egress, cidrs, peers).items():
                self.policies[f"{ns}/{policy}"] = k8s.networking.v1.NetworkPolicy(
                    f"{name}-{ns}-{policy}", metadata={"name": policy, "namespace": ns}, spec=spec,
                    opts=pulumi.ResourceOptions(parent=self, provider=self.provider,
                                                depends_on=[self.namespaces[ns]]))
        guarded: list[pulumi.Resource] = [*self.namespaces.values(), *self.policies.values()]
        self.tenant_keys: k8s.core.v1.Secret | None = None
        if args.tenant_keys:
            self.tenant_keys = k8s.core.v1.Secret(
                f"{name}-tenant-keys", metadata={"name": TENANT_KEYS_SECRET, "namespace": GATEWAY_NAMESPACE},
                type="Opaque", string_data={t: pulumi.Output.secret(k) for t, k in sorted(args.tenant_keys.items())},
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=guarded))
            guarded.append(self.tenant_keys)
        self.model_keys = self._model_keys(name, args.serving_values, guarded)
        guarded += self.model_keys
        repository = (args.chart_repository or f"oci://{args.container_registry.rstrip('/')}/charts").rstrip("/")
        self.monitoring = k8s.helm.v3.Release(
            f"{name}-monitoring", name=MONITORING_RELEASE, chart=f"{repository}/{MONITORING_CHART}",
            version=MONITORING_CHART_VERSION, namespace=MONITORING_NAMESPACE, create_namespace=False, atomic=True,
            values=monitoring_values(args.container_registry.rstrip("/"), args.monitoring_retention_days,
                                     args.alert_webhooks),
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=guarded))
        # The serving chart's ServiceMonitors and rules need the monitoring CRDs: install it second.
        self.serving = k8s.helm.v3.Release(
            f"{name}-serving", name=SERVING_RELEASE, chart=args.chart_path, namespace=SERVING_NAMESPACE,
            create_namespace=False, atomic=True, values=args.serving_values,
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[*guarded, self.monitoring]))
        self.monitoring_urls = {
            "prometheus": f"http://{MONITORING_RELEASE}-prometheus.{MONITORING_NAMESPACE}.svc:9090",
            "alertmanager": f"http://{MONITORING_RELEASE}-alertmanager.{MONITORING_NAMESPACE}.svc:9093",
        }
        self.register_outputs({"namespaces": list(self.namespaces), "tenant_keys_secret": TENANT_KEYS_SECRET,
                               "monitoring_urls": self.monitoring_urls,
                               "serving_release": self.serving.name, "monitoring_release": self.monitoring.name})

    def _model_keys(self, name: str, values: dict[str, Any], guarded: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """The key each model's vLLM server requires (values: models.<name>.apiKeySecret), random and kept in
        state as a secret; the same Secret in the gateway's namespace lets the gateway present it."""
        made: list[pulumi.Resource] = []
        for served, model in sorted((values.get("models") or {}).items()):
            ref = model.get("apiKeySecret") if isinstance(model, dict) else None
            if not ref:
                continue
            password = random.RandomPassword(f"{name}-{served}-api-key", length=MODEL_KEY_LENGTH, special=False,
                                             opts=pulumi.ResourceOptions(parent=self))
            key = pulumi.Output.secret(password.result)
            for ns in (SERVING_NAMESPACE, GATEWAY_NAMESPACE):
                made.append(k8s.core.v1.Secret(
                    f"{name}-{ns}-{served}-api-key", metadata={"name": ref["name"], "namespace": ns}, type="Opaque",
                    string_data={ref["key"]: key},
                    opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=guarded)))
        return made
