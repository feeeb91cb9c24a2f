"""The Ansible inventory and group vars of a site, rendered from its SiteConfig (deterministic YAML)."""

from __future__ import annotations

import yaml

from sovkit import ports
from sovkit.config import SiteConfig
from sovkit.config.types import ROLES, split_host_port
from sovkit.render.vllm_args import render_vllm

# Where data lives on every host: the roles place it there and data_at_rest inspects these volumes.
DATA_PATHS = {"model_store": "/srv/sovkit/models", "logs": "/var/log/sovkit", "kubernetes": "/var/lib/rancher"}


# How Ansible reaches the `local` stack's hosts (podman containers on this machine): the kit's own
# connection plugin, playbooks/connection_plugins/sovkit_podman.py (podman exec with pipelining).
LOCAL_CONNECTION = "sovkit_podman"


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
                "ansible_host": node.address or node.name,
                "sovkit_address": node.address or node.name,
                "ansible_user": node.ssh_user,
                "ansible_port": node.ssh_port,
                "sovkit_role": role,
                "sovkit_node_accelerator": {"model": node.accelerator_model, "count": node.accelerator_count},
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
        "sovkit_ports": {"gateway": ports.GATEWAY, "prometheus": ports.PROMETHEUS,
                         "node_exporter": ports.NODE_EXPORTER},
        "sovkit_serving": render_serving(site) if site.platform.mode == "hosts" else None,
    }
    return {"all": {"vars": variables, "children": groups}}


def render_serving(site: SiteConfig) -> dict:
    """Hosts mode: each model's vLLM launch (from the one renderer) and each tenant's grant and limits.
    API keys are secrets and never here: `sovkit up` and Pulumi pass them to the play separately."""
    models = {}
    for served, spec in site.serving.models.items():
        launch = render_vllm(site, served, model_path=f"{DATA_PATHS['model_store']}/{served}")
        models[served] = {"port": launch.port, "args": launch.args, "env": launch.env, "path": launch.model_path,
                          "source": spec.source, "revision": spec.revision}
    tenants = {name: {"models": list(t.models), "requests_per_minute": t.rate_limit.requests_per_minute,
                      "burst": t.rate_limit.burst, **({"key_file": t.api_key.file} if t.api_key.file else {})}
               for name, t in site.serving.tenants.items()}
    return {"models": models, "tenants": tenants}


def inventory_yaml(site: SiteConfig) -> str:
    return yaml.safe_dump(render_inventory(site), sort_keys=True, default_flow_style=False, width=120)
