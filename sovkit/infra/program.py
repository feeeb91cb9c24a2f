"""The Pulumi program of a site: `build(site, root=...)` creates every component and returns the stack outputs.

Order matters and is explicit: the state backend is checked and the residency transform installed before any
resource exists; the machines come first, then the site play on them, then (kubernetes mode) the platform on the
cluster the play bootstrapped. A stack that names an existing cluster's kubeconfig gets the platform alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from sovkit import ports
from sovkit.config.schema import PROJECT, SecretRef
from sovkit.config.site import SiteConfig
from sovkit.infra import residency
from sovkit.infra.host_configuration import HostConfiguration, HostConfigurationArgs, with_addresses, workdir
from sovkit.infra.kubernetes_platform import KubernetesPlatform, KubernetesPlatformArgs
from sovkit.infra.nodes import DATA_VOLUME_VAR, Nodes, NodesArgs
from sovkit.render.inventory import inventory_yaml, render_inventory
from sovkit.render.values import render_values
from sovkit.render.vllm_args import PlanError

SERVING_CHART = "charts/sovkit-serving"


@dataclass(frozen=True)
class ServingInputs:
    """The serving chart and its values (kubernetes mode)."""

    chart_path: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Program:
    """What `build` made, for the stack outputs and for tests."""

    site: SiteConfig
    policy: residency.ResidencyPolicy
    nodes: Nodes | None  # None on an existing cluster (kubeconfig): sovkit creates and configures no machine
    hosts: HostConfiguration | None
    platform: KubernetesPlatform | None
    outputs: dict[str, Any]


def serving_inputs(site: SiteConfig, root: Path) -> ServingInputs:
    """The serving chart of this checkout and its values: exactly what `sovkit values STACK` prints."""
    chart = root / SERVING_CHART
    if not (chart / "Chart.yaml").is_file():
        raise pulumi.RunError(f"{site.source}: mode kubernetes installs the serving chart {SERVING_CHART}, but "
                              f"{chart}/Chart.yaml does not exist in this checkout. Nothing was changed.")
    try:
        values = render_values(site)
    except PlanError as err:  # the same words `sovkit values` uses, before any resource is planned
        raise pulumi.RunError(f"{site.source}: {err}\n  run `sovkit plan {site.name}` for what would fit. "
                              "Nothing was changed.") from None
    return ServingInputs(str(chart), values)


def stack_config() -> dict[str, str]:
    """The program's plain (non-secret) stack config: part of the site play's trigger."""
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = {k for k in values if runtime_config.is_config_secret(k)}
    secret |= set(runtime_config.get_config_secret_keys_env())
    return {k: str(v) for k, v in sorted(values.items()) if k.startswith(PROJECT + ":") and k not in secret}


def read_secret(site: SiteConfig, ref: SecretRef, key_path: str) -> pulumi.Output[str]:
    """A secret the stack names: its Pulumi secret config key, or the file on this machine, as a Pulumi secret."""
    if ref.pulumi_secret:
        return pulumi.Config().require_secret(ref.pulumi_secret)
    path = Path(ref.file or "")
    try:
        return pulumi.Output.secret(path.read_text(encoding="utf-8").strip())
    except OSError as err:
        raise pulumi.RunError(
            f"{site.source}: {PROJECT}:{key_path}.file names {path}, which cannot be read ({err.strerror}); "
            "allowed: a readable file on this machine, or pulumiSecret. Nothing was changed.") from None


def tenant_keys(site: SiteConfig, *, include_files: bool) -> dict[str, pulumi.Output[str]]:
    """API keys as Pulumi secrets: those named by pulumiSecret, and (kubernetes mode) those kept in files."""
    return {tenant: read_secret(site, spec.api_key, f"tenants.{tenant}.apiKey")
            for tenant, spec in sorted(site.serving.tenants.items())
            if spec.api_key.pulumi_secret or include_files}


def model_store_credentials(site: SiteConfig) -> dict[str, pulumi.Output[str]]:
    """The S3 store's credentials (kubernetes mode), under the names the chart's fetchers read."""
    creds = site.residency.model_store_credentials
    if creds is None:
        return {}
    return {"AWS_ACCESS_KEY_ID": read_secret(site, creds.access_key_id, "modelStoreCredentials.accessKeyId"),
            "AWS_SECRET_ACCESS_KEY": read_secret(site, creds.secret_access_key,
                                                 "modelStoreCredentials.secretAccessKey")}


def etcd_snapshot_credentials(site: SiteConfig) -> dict[str, pulumi.Output[str]]:
    """An RKE2 site's etcd snapshot store credentials (etcdSnapshotCredentials), by field, as Pulumi secrets: handed
    to the site play's converge, which writes them to rke2-server's environment file on the servers."""
    creds = site.platform.etcd_snapshot_credentials
    if creds is None:
        return {}
    return {"accessKeyId": read_secret(site, creds.access_key_id, "etcdSnapshotCredentials.accessKeyId"),
            "secretAccessKey": read_secret(site, creds.secret_access_key, "etcdSnapshotCredentials.secretAccessKey")}


def build(site: SiteConfig, *, root: Path, environ: Mapping[str, str] | None = None) -> Program:
    """Create the site's resources from the validated site and the checkout at `root`."""
    pulumi.log.info(residency.check_backend(site, environ))
    policy = residency.install(site)
    kubernetes = site.platform.mode == "kubernetes"
    serving = serving_inputs(site, root) if kubernetes else None
    if site.platform.kubeconfig is not None:  # an existing cluster: only what runs in it
        assert serving is not None
        kubeconfig = read_secret(site, site.platform.kubeconfig, "kubeconfig")
        platform = _platform(site, serving, kubeconfig, None)
        outputs = {**_site_outputs(site), "nodes": {n.name: n.address for n in site.nodes},
                   **_platform_outputs(platform)}
        return Program(site, policy, None, None, platform, outputs)

    nodes = Nodes(site.name, NodesArgs.from_site(site))  # OpenStack: reads the site's public key first
    openstack = site.infrastructure.provider == "openstack"
    if openstack:
        # The addresses the cloud gave the servers, and each one's data volume evidence as `sovkit_data_volume`,
        # for the site play and `sovkit verify`.
        facts = pulumi.Output.all(addresses=pulumi.Output.all(**nodes.addresses),
                                  volumes=pulumi.Output.all(**nodes.data_volumes))
        # Rendered with the addresses, so what derives from them (each node's firewall sources, Prometheus's
        # targets) names the cloud's addresses too.
        inventory: pulumi.Input[str] = facts.apply(lambda f: with_addresses(
            render_inventory(site, addresses=f["addresses"]), f["addresses"],
            {node: {DATA_VOLUME_VAR: volume} for node, volume in f["volumes"].items()}))
    else:
        inventory = inventory_yaml(site)
    hosts = HostConfiguration(site.name, HostConfigurationArgs(
        site_name=site.name, inventory=inventory, stack_config=stack_config(), root=root,
        tenant_keys={} if kubernetes else tenant_keys(site, include_files=False),
        etcd_snapshot_credentials=etcd_snapshot_credentials(site), fetch_kubeconfig=kubernetes),
        opts=pulumi.ResourceOptions(depends_on=[nodes]))

    serving_nodes = [n.name for n in site.serving_nodes()]
    outputs: dict[str, Any] = {
        **_site_outputs(site),
        "nodes": nodes.hosts,
        "inventory": inventory,
        "endpoints": pulumi.Output.all(**{n: nodes.addresses[n] for n in serving_nodes}).apply(
            lambda addresses: {n: f"https://{_host(a)}/v1" for n, a in sorted(addresses.items())}),
        "monitoring": nodes.addresses[serving_nodes[0]].apply(
            lambda a: {"prometheus": f"http://{_host(a)}:{ports.PROMETHEUS}"}),
        "sitePlayTrigger": hosts.trigger,
    }
    platform = None
    if kubernetes:
        assert serving is not None and hosts.kubeconfig is not None
        platform = _platform(site, serving, hosts.kubeconfig, hosts)
        outputs |= _platform_outputs(platform)
    if openstack:  # per node: the data volume, its encrypted volume type, where it is mounted
        outputs["dataVolumes"] = pulumi.Output.all(**nodes.data_volumes).apply(
            lambda volumes: dict(sorted(volumes.items())))
    return Program(site, policy, nodes, hosts, platform, outputs)


def _platform(site: SiteConfig, serving: ServingInputs, kubeconfig: pulumi.Input[str],
              hosts: HostConfiguration | None) -> KubernetesPlatform:
    return KubernetesPlatform(site.name, KubernetesPlatformArgs(
        site=site, kubeconfig=kubeconfig, chart_path=serving.chart_path, serving_values=serving.values,
        tenant_keys=tenant_keys(site, include_files=True), model_store_credentials=model_store_credentials(site)),
        opts=pulumi.ResourceOptions(depends_on=[hosts] if hosts else []))


def _site_outputs(site: SiteConfig) -> dict[str, Any]:
    return {"site": {"name": site.name, "country": site.site.country, "profile": site.profile.id,
                     "provider": site.infrastructure.provider, "mode": site.platform.mode},
            "complianceReport": f"{workdir(site.name)}/compliance/report.html"}


def _platform_outputs(platform: KubernetesPlatform) -> dict[str, Any]:
    """Kubernetes mode: the gateway is the endpoint; its CA is what callers trust; the kubeconfig is a secret
    (`pulumi stack output kubeconfig --show-secrets`)."""
    return {"endpoints": platform.gateway.endpoint.apply(lambda url: {"gateway": url}),
            "gatewayAddress": platform.gateway.address, "gatewayCa": platform.gateway.ca.cert_pem,
            "monitoring": platform.monitoring_urls, "kubeconfig": platform.kubeconfig}


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def export(program: Program) -> None:
    for name, value in program.outputs.items():
        pulumi.export(name, value)
