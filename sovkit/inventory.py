"""The Ansible inventory and group vars of a site, rendered from its SiteConfig (deterministic YAML)."""

from __future__ import annotations

import yaml

from sovkit.config import SiteConfig
from sovkit.config.types import ROLES, split_host_port

# Where data lives on every host: the roles place it there and data_at_rest inspects these volumes.
DATA_PATHS = {"model_store": "/srv/sovkit/models", "logs": "/var/log/sovkit", "kubernetes": "/var/lib/rancher"}


def local_container_name(node_name: str) -> str:
    return node_name


def render_inventory(site: SiteConfig) -> dict:
    """Inventory as a dict: groups by node role, site facts as `sovkit_*` vars for the playbooks to map."""
    res = site.residency
    profile = site.profile
    groups: dict[str, dict] = {}
    for role in ROLES:
        hosts = {}
        for node in site.nodes_with_role(role):
            host: dict[str, object] = {
                "ansible_host": node.address if node.address else local_container_name(node.name),
                "ansible_user": node.ssh_user,
                "ansible_port": node.ssh_port,
                "sovkit_role": role,
                "sovkit_accelerator": {"model": node.accelerator_model, "count": node.accelerator_count},
            }
            if site.infrastructure.provider == "local":
                host["ansible_connection"] = "containers.podman.podman"
                del host["ansible_port"]
            hosts[node.name] = host
        if hosts:
            groups[role] = {"hosts": hosts}
    endpoints = []
    for endpoint, why in sorted(res.allowed_endpoints.items()):
        host, port = split_host_port(endpoint)
        endpoints.append({"host": host, "port": port, "justification": why})
    variables = {
        "sovkit_site": {"name": site.name, "country": site.site.country, "region": site.site.region,
                        "city": site.site.city, "profile": profile.id},
        "sovkit_profile": {"law": profile.law.short_name,
                           "clauses": {cid: clause.cite for cid, clause in sorted(profile.clauses.items())}},
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
        },
        "sovkit_data_paths": dict(DATA_PATHS),
    }
    return {"all": {"vars": variables, "children": groups}}


def inventory_yaml(site: SiteConfig) -> str:
    return yaml.safe_dump(render_inventory(site), sort_keys=True, default_flow_style=False, width=120)
