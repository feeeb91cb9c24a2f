"""Kubernetes mode's in-cluster renderings, pure functions of the site: the third-party charts it installs (pinned,
from the in-country chart mirror, images from the in-country registry) and their values, the nodes' labels, and how
long a model may take to start (the serving release's Helm wait and the chart's startup probe).

Namespaces follow the serving chart's defaults (its NetworkPolicies admit the gateway from `sovkit-gateway` and
Prometheus from `monitoring`), so the two agree without overriding its values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sovkit.config.rke2 import runs_rke2
from sovkit.config.site import SiteConfig
from sovkit.config.vendors import vendor
from sovkit.render import alerting

SERVING_NAMESPACE = "sovkit-serving"
GATEWAY_NAMESPACE = "sovkit-gateway"
MONITORING_NAMESPACE = "monitoring"
# Host metrics need a hostNetwork, hostPID DaemonSet with the host's root mounted read-only: Pod Security's
# `privileged` level, in a namespace of its own so that `monitoring` stays `restricted`.
NODE_EXPORTER_NAMESPACE = "sovkit-node-exporter"
LWS_NAMESPACE = "lws-system"
SERVING_RELEASE = "sovkit-serving"
SERVING_PORT = 8000  # the serving chart's service.port

ROLE_LABEL = "sovkit.io/role"  # the node's role in the stack; the serving chart's nodeSelector names it
ACCELERATOR_LABEL = "sovkit.io/accelerator"  # the accelerator model of the node, from the stack


@dataclass(frozen=True)
class ChartPin:
    """A third-party chart the cluster installs: from oci://<containerRegistry>/charts/<chart> at this version."""

    chart: str
    version: str
    namespace: str
    release: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def release_name(self) -> str:
        return self.release or self.chart


# The versions the offline bundle lists for the in-country chart mirror (bundle/chart/third-party-charts.yaml).
MONITORING_CHART = ChartPin("kube-prometheus-stack", "85.1.3", MONITORING_NAMESPACE)
LWS_CHART = ChartPin("lws", "0.7.0", LWS_NAMESPACE)

# How long a model's pod may take to answer /health: fetching its weights over the stated link (with a margin for
# a store serving several nodes), verifying a signed model's weights (the verify-model init container reads and
# hashes every file again), loading them onto the accelerators, and the engine's own start (image, CUDA/ROCm
# initialisation, graph capture).
FETCH_MARGIN = 2.0
# bench/bench_verify_weights.py measures the verification from the page cache; this allows for a node's disk at
# about 200 MiB/s, slower than the hashing.
VERIFY_S_PER_GIB = 5.0
LOAD_S_PER_GIB = 2.0
ENGINE_START_S = 300
HELM_MINIMUM_S = 600


def start_budget_s(weights_gib: float, link_mbps: int, *, verified: bool = False) -> int:
    """Seconds one pod of a model of `weights_gib` may take to start when it fetches its weights at `link_mbps`
    megabits per second (and, `verified`, checks them against their signature): the chart's startup probe and the
    Helm wait give it this long."""
    fetch_s = weights_gib * 2**30 * 8 / (link_mbps * 1_000_000)
    verify_s = VERIFY_S_PER_GIB * weights_gib if verified else 0.0
    return math.ceil(FETCH_MARGIN * fetch_s + verify_s + LOAD_S_PER_GIB * weights_gib + ENGINE_START_S)


def release_timeout_s(values: dict) -> int:
    """The serving release's Helm wait: the slowest model's replicas started one after another (a rolling update
    replaces one pod at a time, never surging onto GPUs that are not free), each within its startup budget."""
    slowest = max((m["replicas"] * m["startupSeconds"] for m in (values.get("models") or {}).values()), default=0)
    return max(HELM_MINIMUM_S, slowest)


def node_labels(site: SiteConfig) -> dict[str, dict[str, str]]:
    """{node name: labels}: its role and, where it has one, its accelerator model, as the serving chart selects."""
    labels: dict[str, dict[str, str]] = {}
    for node in site.nodes:
        labels[node.name] = {ROLE_LABEL: node.role}
        if node.accelerator_model:
            labels[node.name][ACCELERATOR_LABEL] = node.accelerator_model
    return labels


def role_selector(site: SiteConfig, role: str) -> dict[str, str]:
    """The nodeSelector of a model on `role` nodes: the role, and the accelerator model its nodes share."""
    models = {n.accelerator_model for n in site.nodes_with_role(role)}
    selector = {ROLE_LABEL: role}
    if len(models) == 1 and None not in models:
        selector[ACCELERATOR_LABEL] = str(models.pop())
    return selector


def _set(values: dict, path: str, key: str, value: str) -> None:
    node = values
    for part in path.split("."):
        node = node.setdefault(part, {})
    node[key] = value


def device_chart(site: SiteConfig) -> ChartPin | None:
    """The vendor's chart that makes the site's GPUs schedulable (sovkit/data/vendors/), or None (cpu)."""
    chart = vendor(site.accelerator.accelerator).kubernetes_device_chart
    if chart is None:
        return None
    registry = site.residency.container_registry.rstrip("/")
    values: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in chart.values.items()}
    if runs_rke2(site):  # what the vendor's chart needs on RKE2 (its containerd's socket and config template)
        for key, value in chart.rke2_values.items():
            values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    for path, image in sorted(chart.images.items()):
        _set(values, path, "repository", f"{registry}/{image}")
    return ChartPin(chart.chart, chart.version, chart.namespace, values=values)


def monitoring_values(site: SiteConfig) -> dict[str, Any]:
    """kube-prometheus-stack: every image from the in-country registry, nothing exposed, no phone-home, node
    exporter on every node, and Alertmanager with every receiver of the stack, as hosts mode renders it."""
    cluster_ip = {"type": "ClusterIP"}
    return {
        "global": {"imageRegistry": site.residency.container_registry.rstrip("/")},
        # The operator's own Grafana reads the dashboards (ConfigMaps); none runs here to phone home.
        "grafana": {"enabled": False},
        "forceDeployDashboards": True,
        "nodeExporter": {"enabled": True},
        "prometheus-node-exporter": {"namespaceOverride": NODE_EXPORTER_NAMESPACE},
        "prometheus": {
            "service": cluster_ip,
            "prometheusSpec": {
                "retention": f"{site.monitoring.monitoring_retention_days}d",
                # every ServiceMonitor and rule of the cluster: the serving chart's, the DCGM exporter's
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "serviceMonitorNamespaceSelector": {},
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
            },
        },
        "alertmanager": {"service": cluster_ip, "config": alerting.alertmanager_config(site)},
    }


def spans_nodes(values: dict) -> bool:
    """A model spans nodes (a LeaderWorkerSet of the serving chart): the LWS controller must run."""
    return any(int(m.get("nodesPerReplica", 1)) > 1 for m in (values.get("models") or {}).values())


def lws_chart(site: SiteConfig) -> ChartPin:
    registry = site.residency.container_registry.rstrip("/")
    return ChartPin(LWS_CHART.chart, LWS_CHART.version, LWS_CHART.namespace,
                    values={"image": {"manager": {"repository": f"{registry}/lws/lws"}}})


def third_party_charts(site: SiteConfig, values: dict) -> list[ChartPin]:
    """Every chart the site's cluster installs besides the serving chart, for the in-country chart mirror."""
    charts = [MONITORING_CHART]
    device = device_chart(site)
    if device is not None:
        charts.append(device)
    if spans_nodes(values):
        charts.append(lws_chart(site))
    return charts
