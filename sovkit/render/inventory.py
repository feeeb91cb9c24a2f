"""The Ansible inventory of a site, rendered from its SiteConfig (deterministic YAML): hosts grouped by role, each
with its connection and its own role variables, and under `all.vars` the site's facts (`sovkit_*`, which reports
and the compliance suite read) and every site-wide role variable (sovkit/render/role_vars.py)."""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from sovkit import ports
from sovkit.config import SiteConfig
from sovkit.config.rke2 import runs_rke2
from sovkit.config.types import ROLES, split_host_port
from sovkit.render import rke2, role_vars
from sovkit.render.role_vars import DATA_PATHS
from sovkit.workspace import HOST_BUNDLE_DIR, SiteWorkspace

# How Ansible reaches the `local` stack's hosts (podman containers on this machine): the kit's own
# connection plugin, playbooks/connection_plugins/sovkit_podman.py (podman exec with pipelining).
LOCAL_CONNECTION = "sovkit_podman"

__all__ = ["DATA_PATHS", "LOCAL_CONNECTION", "inventory_yaml", "render_inventory"]


def local_container_name(node_name: str) -> str:
    return node_name


def render_inventory(site: SiteConfig, *, addresses: Mapping[str, str] | None = None,
                     workspace: SiteWorkspace | None = None) -> dict:
    """The inventory as a dict. `addresses` gives the nodes a cloud made their addresses (OpenStack); `workspace`
    is where the site's files are on the machine running the play (default: under the project root)."""
    addresses = addresses or {}
    groups: dict[str, dict] = {}
    for role in ROLES:
        hosts = {}
        for node in site.nodes_with_role(role):
            address = addresses.get(node.name) or node.address or node.name
            host: dict[str, object] = {
                "ansible_host": address,
                "sovkit_address": address,
                "ansible_user": node.ssh_user,
                "ansible_port": node.ssh_port,
                "sovkit_role": role,
                "sovkit_node_accelerator": {"model": node.accelerator_model, "count": node.accelerator_count},
                **role_vars.host_vars(site, node, addresses),
            }
            if site.infrastructure.provider == "local":
                host["ansible_host"] = local_container_name(node.name)
                host["ansible_connection"] = LOCAL_CONNECTION
                # local hosts are logged into as root (SiteConfig.nodes): naming its home saves asking the
                # host for it before every task that sends a file
                host["ansible_remote_tmp"] = "/root/.ansible/tmp"
                del host["ansible_port"]
            hosts[node.name] = host
        if hosts:
            groups[role] = {"hosts": hosts}
    serving = [n.name for n in site.serving_nodes()]
    if site.platform.mode == "hosts" and serving:
        # Each serving node runs its models and the gateway in front of them; the first also Prometheus,
        # which scrapes every node (monitored).
        groups["serving"] = {"hosts": {name: {} for name in serving}}
        groups["monitoring"] = {"hosts": {serving[0]: {}}}
        groups["monitored"] = {"hosts": {n.name: {} for n in site.nodes}}
    if runs_rke2(site):
        # RKE2's servers join one after another, the first initialising the cluster, then its agents; the GPU nodes
        # get their driver first (playbooks/platform.yml).
        groups["rke2_servers"] = {"hosts": {n.name: {} for n in rke2.servers(site)}}
        groups["rke2_agents"] = {"hosts": {n.name: {} for n in rke2.agents(site)}}
        if site.accelerator.accelerator != "cpu":
            groups["rke2_gpu_nodes"] = {"hosts": {n.name: {} for n in site.nodes if n.accelerator_count}}
    variables = {**site_facts(site), **role_vars.site_vars(site, workspace)}
    return {"all": {"vars": variables, "children": groups}}


def site_facts(site: SiteConfig) -> dict:
    """The site as reports and the compliance suite read it: names, law, residency facts, ports, paths."""
    res = site.residency
    profile = site.profile
    endpoints = []
    for endpoint, why in sorted(res.allowed_endpoints.items()):
        host, port = split_host_port(endpoint)
        endpoints.append({"host": host, "port": port, "justification": why})
    return {
        "sovkit_site": {"name": site.name, "country": site.site.country, "region": site.site.region,
                        "city": site.site.city, "profile": profile.id, "provider": site.infrastructure.provider},
        "sovkit_profile": {"law": profile.law.short_name,
                           "clauses": {cid: {"cite": clause.cite, "title": clause.title}
                                       for cid, clause in sorted(profile.clauses.items())}},
        "sovkit_residency": {
            "in_country_cidrs": list(res.in_country_cidrs),
            "in_country_domains": list(res.in_country_domains),
            "allowed_endpoints": endpoints,
            "ntp_servers": list(res.ntp_servers),
            "dns_resolvers": list(res.dns_resolvers),
            "apt_mirror": res.apt_mirror,
            "container_registry": res.container_registry,
            "model_store": res.model_store,
            "log_retention_days": site.log_retention_days,
            "encryption_at_rest_required": res.encryption_at_rest_required,
            "admin_cidrs": list(res.admin_cidrs),
        },
        "sovkit_platform": {
            "mode": site.platform.mode,
            "kubernetes": None if site.platform.mode != "kubernetes" else {
                "distribution": "rke2", "version": site.platform.rke2_version,
                "cis_profile": site.platform.cis_profile, "cluster_cidr": site.platform.cluster_cidr,
                "service_cidr": site.platform.service_cidr},
        },
        "sovkit_accelerator": {"vendor": site.accelerator.accelerator,
                               "driver_version": site.accelerator.accelerator_driver_version,
                               "toolkit_version": site.accelerator.accelerator_toolkit_version},
        "sovkit_monitoring": {
            "retention_days": site.monitoring.monitoring_retention_days,
            "alert_receivers": [{"name": name, **r.model_dump(exclude_none=True)}
                                for name, r in sorted(site.monitoring.alert_receivers.items())],
            "smtp_relay": site.monitoring.smtp_relay.address if site.monitoring.smtp_relay else None,
        },
        "sovkit_data_paths": dict(DATA_PATHS),
        "sovkit_bundle_dir": HOST_BUNDLE_DIR,
        "sovkit_ports": {"gateway": ports.GATEWAY, "prometheus": ports.PROMETHEUS,
                         "node_exporter": ports.NODE_EXPORTER, "gpu_exporter": ports.GPU_EXPORTER},
    }


def inventory_yaml(site: SiteConfig, **options: object) -> str:
    return yaml.safe_dump(render_inventory(site, **options), sort_keys=True, default_flow_style=False,  # type: ignore[arg-type]
                          width=120)
