"""Every role variable a site's plays receive, rendered from the validated SiteConfig: the one place they are derived.

The roles take these as they are (no Jinja re-derivation in the playbooks), and an operator can still override any
of them in the inventory (group or host variables beat `all`). Site-wide variables go to `all.vars`
(`site_vars`), per-host ones to each host (`host_vars`). `PRECONDITIONS` names, for every check a role runs on its
inputs before it changes anything, the variable it checks, the check (sovkit/config/checks.py, the same function
`sovkit validate` applies) and the stack key the variable comes from.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sovkit import ports
from sovkit.config import SiteConfig, runtime
from sovkit.config.catalogue import on_nvswitch_board
from sovkit.config.planner import devices_on
from sovkit.config.rke2 import api_address, runs_rke2
from sovkit.config.schema import ModelSpec
from sovkit.config.signers import signature_location, signer_file
from sovkit.config.site import Node
from sovkit.config.types import host_of_url, split_host_port
from sovkit.config.vendors import vendor
from sovkit.render import alerting, gateway, rke2, sandbox
from sovkit.render.cloud_init import DATA_MOUNT, METADATA_ADDRESS, METADATA_PORT
from sovkit.render.gate import WithheldGrant, read_reports, withheld_grants
from sovkit.render.packages import host_packages
from sovkit.render.vllm_args import render_vllm
from sovkit.stacks import project_root
from sovkit.workspace import HOST_BUNDLE_DIR, HOST_DATA_PATHS, SiteWorkspace

DATA_PATHS = HOST_DATA_PATHS
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
APT_KEYRING_DIR = "/etc/apt/keyrings"
RUNTIME_VENV = "/opt/sovkit/vllm"  # hosts mode: the serving runtime, installed from the lock by vllm_service
# hosts mode: each model server's environment file, root only, beside the key the gateway presents to them all
MODEL_SERVER_CONFIG_DIR = "/etc/sovkit/vllm"
# an underscore, which no served name (a slug) has: no model's <name>.env can be this file
MODEL_SERVER_GATEWAY_KEY_FILE = f"{MODEL_SERVER_CONFIG_DIR}/gateway_key.env"
MODEL_SERVER_HOME = "/var/lib/sovkit/vllm"  # each model server's working folder (its caches) is <served name> here
SYSTEMD_UNIT_DIR = "/etc/systemd/system"  # where the roles write the kit's own units
# the GPU exporter and the budget keeper are copied to the hosts from here
SOVKIT_PACKAGE = Path(__file__).resolve().parents[1]
MODEL_SIGNATURES_DIR = "/etc/sovkit/model-signatures"  # each signed model's <model>.sig and <model>.pem, on a host
CA_DIR = "/usr/local/share/ca-certificates"  # update-ca-certificates adds what is here to the trust store
# The kit's services' own firewall rules, by socket owner: each service's role writes a file here, and the host's
# ruleset includes the folder, so that they load together at boot (SOV-SRV-004).
SERVICE_RULES_DIR = "/etc/sovkit/nftables.d"
SUDO_LOG = "/var/log/sudo.log"  # sudo logs every command here (SOV-OS-010); audited and rotated (SOV-AUD-001, -004)
# OpenStack's metadata service: cloud-init reads the server's key and user data there at first boot.
METADATA_SERVICE = {"host": METADATA_ADDRESS, "port": METADATA_PORT,
                    "justification": "OpenStack metadata service: cloud-init reads the server's key and user data"}


@dataclass(frozen=True)
class Precondition:
    """A role's check of one input variable: `check` from sovkit.config.checks with `args` (argument -> the
    variable holding it); `stack_key` is the stack key the variable is rendered from."""

    role: str
    variable: str
    check: str
    stack_key: str
    args: dict[str, str] = field(default_factory=dict)
    covers: tuple[str, ...] = ()  # for a map of entries: the fields of each entry the check reads (all when empty)


PRECONDITIONS: tuple[Precondition, ...] = (
    Precondition("residency_network", "residency_network_in_country_cidrs", "networks", "inCountryCidrs"),
    Precondition("residency_network", "residency_network_admin_cidrs", "admin_networks", "adminCidrs",
                 {"in_country_cidrs": "residency_network_in_country_cidrs"}),
    Precondition("residency_network", "residency_network_allowed_endpoints", "endpoints", "allowedEndpoints"),
    Precondition("residency_time_dns", "residency_time_dns_ntp_servers", "in_country_addresses", "ntpServers",
                 {"in_country_cidrs": "residency_time_dns_in_country_cidrs"}),
    Precondition("residency_time_dns", "residency_time_dns_resolvers", "in_country_addresses", "dnsResolvers",
                 {"in_country_cidrs": "residency_time_dns_in_country_cidrs"}),
    Precondition("audit_logging", "audit_logging_retention_days", "retention", "logRetentionDays",
                 {"minimum": "audit_logging_retention_minimum_days", "basis": "audit_logging_retention_basis"}),
    Precondition("audit_logging", "audit_logging_remote_collectors", "collectors", "logCollector",
                 {"in_country_cidrs": "audit_logging_in_country_cidrs",
                  "in_country_domains": "audit_logging_in_country_domains"}),
    Precondition("model_store", "model_store_models", "model_sources", "models",
                 {"root": "model_store_root", "store": "model_store_store"}, covers=("revision", "source")),
    Precondition("gateway", "gateway_tenants", "grants", "tenants", {"served": "gateway_model_names"},
                 covers=("models", "rateLimit")),
    # RKE2 sites only (kubernetes mode without an existing cluster's kubeconfig): the release's artifacts come from
    # the in-country mirror and are pinned by the digest of their checksum file.
    Precondition("rke2", "rke2_artifacts_url", "artifact_mirror", "rke2Artifacts",
                 {"in_country_cidrs": "rke2_in_country_cidrs", "in_country_domains": "rke2_in_country_domains"}),
    Precondition("rke2", "rke2_checksums_sha256", "sha256_pin", "rke2ChecksumsSha256"),
)


def _families(cidrs: list[str]) -> dict[str, list[str]]:
    """Sources split by address family, as nftables needs them (`ip saddr` and `ip6 saddr`)."""
    out: dict[str, list[str]] = {"v4": [], "v6": []}
    for cidr in cidrs:
        out["v6" if ipaddress.ip_network(cidr, strict=False).version == 6 else "v4"].append(cidr)
    return out


def _rule(name: str, proto: str, port: int | tuple[int, int], sources: list[str]) -> dict:
    ports_text = f"{port[0]}-{port[1]}" if isinstance(port, tuple) else str(port)
    return {"name": name, "proto": proto, "ports": ports_text, "from": _families(sorted(set(sources)))}


def _address_of(node: Node, addresses: Mapping[str, str]) -> str | None:
    return addresses.get(node.name) or node.address


def _hosts(nodes: list[Node], addresses: Mapping[str, str]) -> list[str] | None:
    """The nodes' addresses as /32 or /128 networks; None when one is not known yet (OpenStack before `up`)."""
    found = [_address_of(n, addresses) for n in nodes]
    if any(a is None for a in found):
        return None
    return [str(ipaddress.ip_network(a)) for a in found if a]


def inbound_rules(site: SiteConfig, node: Node, addresses: Mapping[str, str]) -> list[dict]:
    """What the host firewall admits on `node` besides SSH: exactly what the site runs there, from whom."""
    res = site.residency
    in_country = list(res.in_country_cidrs)
    nodes = list(site.nodes)
    # Before a cloud has given the addresses, the site's own networks stand in for its nodes.
    cluster = _hosts(nodes, addresses) or in_country
    rules: list[dict] = []
    if site.platform.mode == "hosts":
        serving = site.serving_nodes()
        if node in serving:
            rules.append(_rule("gateway (OpenAI-compatible API)", "tcp", ports.GATEWAY, in_country))
            if node == serving[0]:
                rules.append(_rule("Prometheus, for the operators", "tcp", ports.PROMETHEUS, list(res.admin_cidrs)))
        monitor = _hosts(serving[:1], addresses) if serving else None
        rules.append(_rule("node exporter, scraped by Prometheus", "tcp", ports.NODE_EXPORTER, monitor or in_country))
        if runs_gpu_exporter(site, node):
            rules.append(_rule("GPU exporter, scraped by Prometheus", "tcp", ports.GPU_EXPORTER, monitor or in_country))
        return rules
    control_planes = _hosts(site.nodes_with_role("control_plane"), addresses) or in_country
    rules.append(_rule("ingress (OpenAI-compatible API)", "tcp", ports.GATEWAY, in_country))
    if node.role == "control_plane":
        rules.append(_rule("Kubernetes API", "tcp", ports.KUBE_API, cluster + list(res.admin_cidrs)))
        rules.append(_rule("RKE2 supervisor", "tcp", ports.RKE2_SUPERVISOR, cluster))
        rules.append(_rule("etcd, between control planes", "tcp", ports.ETCD, control_planes))
    rules.append(_rule("kubelet", "tcp", ports.KUBELET, cluster))
    rules.append(_rule("Canal VXLAN overlay", "udp", ports.VXLAN, cluster))
    rules.append(_rule("node exporter", "tcp", ports.NODE_EXPORTER, cluster))
    return rules


def apt(site: SiteConfig) -> dict:
    """os_baseline's package sources (deb822), the keys that sign them and the CAs the hosts trust."""
    res = site.residency
    mirror = res.apt_mirror.rstrip("/")
    keys: list[dict] = []

    def keyring(name: str, path: str) -> str:
        suffix = ".gpg" if path.endswith(".gpg") else ".asc"  # apt reads either, by its name
        keys.append({"src": path, "dest": f"{APT_KEYRING_DIR}/sovkit-{name}{suffix}"})
        return keys[-1]["dest"]

    if mirror.startswith("file:"):
        # A file: mirror is the offline bundle: a flat repository the bundle's manifest vouches for.
        sources: list[dict] = [{"uris": mirror, "suites": ["./"], "trusted": True}]
        origins = ["origin=Debian,codename=${distro_codename}-security,label=Debian-Security"]
    else:
        components = list(vendor(site.accelerator.accelerator).debian_components)
        signed_by = keyring("mirror", res.apt_mirror_key) if res.apt_mirror_key else DEBIAN_KEYRING
        # A Debian mirror with the security archive beside it (/debian -> /debian-security).
        sources = [{"uris": mirror, "suites": ["bookworm", "bookworm-updates"], "components": components,
                    "signed_by": signed_by},
                   {"uris": mirror + "-security", "suites": ["bookworm-security"], "components": components,
                    "signed_by": signed_by}]
        origins = [f"origin=Debian,codename=${{distro_codename}}-security,label=Debian-Security,"
                   f"site={host_of_url(mirror)}"]
    for name, repo in sorted(res.apt_repositories.items()):
        source: dict = {"uris": repo.url.rstrip("/"), "suites": list(repo.suites)}
        if repo.components:
            source["components"] = list(repo.components)
        if repo.signing_key:
            source["signed_by"] = keyring(name, repo.signing_key)
        else:
            source["trusted"] = True  # file:// only (validate refuses an unsigned remote repository)
        sources.append(source)
    cas = [{"src": path, "dest": f"{CA_DIR}/sovkit-{i}.crt"} for i, path in enumerate(res.trusted_ca_files, 1)]
    return {"os_baseline_apt_sources": sources, "os_baseline_apt_keys": keys,
            # what the lists must know (Debian's archive and the bundle carry them all; vendor drivers aside)
            "os_baseline_site_packages": list(host_packages(project_root() / "roles")),
            "os_baseline_unattended_origins": origins, "os_baseline_ca_certificates": cas}


def site_vars(site: SiteConfig, workspace: SiteWorkspace | None = None) -> dict:
    """The role variables every host of the site shares."""
    res = site.residency
    kubernetes = site.platform.mode == "kubernetes"
    internal = [site.platform.cluster_cidr, site.platform.service_cidr] if kubernetes else []
    endpoints = []
    for endpoint, why in sorted(res.allowed_endpoints.items()):
        host, port = split_host_port(endpoint)
        endpoints.append({"host": host, "port": port, "justification": why})
    if site.infrastructure.provider == "openstack":
        endpoints.append(dict(METADATA_SERVICE))
    minimum, basis = site.log_retention_minimum
    data_paths = {k: v for k, v in DATA_PATHS.items() if k != "kubernetes" or kubernetes}
    variables: dict = {
        # os_baseline; hosts that route for containers or Kubernetes keep IP forwarding on
        "os_baseline_ip_forwarding": kubernetes,
        "os_baseline_sudo_logfile": SUDO_LOG,
        **apt(site),
        # residency_network
        "residency_network_in_country_cidrs": list(res.in_country_cidrs),
        "residency_network_admin_cidrs": list(res.admin_cidrs),
        "residency_network_allowed_endpoints": endpoints,
        "residency_network_dns_resolvers": list(res.dns_resolvers),
        "residency_network_ntp_servers": list(res.ntp_servers),
        "residency_network_forwarding": kubernetes,
        "residency_network_internal_cidrs": internal,
        "residency_network_service_rules_dir": SERVICE_RULES_DIR,
        # residency_time_dns
        "residency_time_dns_ntp_servers": list(res.ntp_servers),
        "residency_time_dns_resolvers": list(res.dns_resolvers),
        "residency_time_dns_search_domains": list(res.in_country_domains),
        "residency_time_dns_in_country_cidrs": list(res.in_country_cidrs),
        # audit_logging
        "audit_logging_retention_days": site.log_retention_days,
        "audit_logging_retention_minimum_days": minimum,
        "audit_logging_retention_basis": basis,
        "audit_logging_watched_paths": [DATA_PATHS["model_store"], "/etc/sovkit"],
        "audit_logging_sudo_logfile": SUDO_LOG,
        "audit_logging_rotated_logs": [SUDO_LOG, f"{DATA_PATHS['logs']}/*.log"],
        "audit_logging_remote_collectors": [res.log_collector] if res.log_collector else [],
        "audit_logging_in_country_cidrs": list(res.in_country_cidrs),
        "audit_logging_in_country_domains": list(res.in_country_domains),
        # what the compliance suite holds every service's sandbox to (the services: sandbox_units, per host)
        "sandbox_max_exposure": sandbox.max_exposure(),
        # what it probes on every gateway, expecting the gateway's 404 (SOV-GW-003)
        "refused_model_server_routes": list(gateway.MODEL_SERVER_ADMIN_ROUTES),
        # data_at_rest
        "data_at_rest_required": res.encryption_at_rest_required,
        "data_at_rest_paths": data_paths,
        "data_at_rest_cloud_volume": {} if site.infrastructure.provider != "openstack" else {
            "mount": DATA_MOUNT, "volume_type": site.infrastructure.openstack_volume_type},
    }
    if site.platform.mode == "hosts":
        variables.update(serve_vars(site, workspace or SiteWorkspace.of(site.name)))
    elif runs_rke2(site):
        variables.update(rke2_vars(site))
    return variables


def rke2_vars(site: SiteConfig) -> dict:
    """The rke2 role's site-wide variables (an RKE2 site): the release's artifacts, the API server's audit policy and
    Pod Security admission, the CIS profile's kernel parameters; and the host driver of the cluster's GPU nodes (the
    accelerator role, before RKE2's agent starts). Each node's config.yaml is its own (host_vars); the cluster token
    comes from the converge pipeline."""
    res = site.residency
    artifacts = rke2.artifacts(site)
    return {
        "rke2_version": site.platform.rke2_version,
        "rke2_artifacts_url": artifacts["url"],
        "rke2_checksums_sha256": artifacts["checksums_sha256"],
        "rke2_artifact_files": artifacts["files"],
        "rke2_staging_dir": artifacts["staging_dir"],
        "rke2_in_country_cidrs": list(res.in_country_cidrs),
        "rke2_in_country_domains": list(res.in_country_domains),
        "rke2_install_prefix": rke2.INSTALL_PREFIX,
        "rke2_images_dir": rke2.IMAGES_DIR,
        "rke2_config_dir": rke2.CONFIG_DIR,
        "rke2_config_file": rke2.CONFIG_FILE,
        "rke2_token_file": rke2.TOKEN_FILE,
        "rke2_server_environment_file": rke2.SERVER_ENVIRONMENT_FILE,
        "rke2_audit_policy_file": rke2.AUDIT_POLICY_FILE,
        "rke2_audit_policy": rke2.audit_policy(),
        "rke2_pod_security_file": rke2.POD_SECURITY_FILE,
        "rke2_pod_security": rke2.pod_security(),
        "rke2_sysctl_file": rke2.SYSCTL_FILE,
        "rke2_cis_sysctls": dict(rke2.CIS_SYSCTLS),
        "rke2_etcd_user": rke2.ETCD_USER,
        "rke2_kubeconfig_file": rke2.KUBECONFIG_FILE,
        "rke2_install_enabled": True,  # a rehearsal stops before what needs the release's binaries
        **accelerator_vars(site),
    }


def accelerator_vars(site: SiteConfig) -> dict:
    """The accelerator role's site-wide variables: the driver from the vendor's repository when the site mirrors it,
    else from Debian's archive (what os_baseline's sources hold); validate has refused a driver neither carries.
    In kubernetes mode the container toolkit is the GPU vendor's chart's (sovkit/data/vendors/), not the host's."""
    name, driver = site.accelerator.accelerator, site.accelerator.accelerator_driver_version or ""
    gpus = vendor(name)
    return {
        "accelerator_vendor": name,
        "accelerator_driver_version": driver,
        "accelerator_container_toolkit": False,
        "accelerator_driver_packages": gpus.driver_install(driver, repository=name in site.residency.apt_repositories),
        "accelerator_kernel_module": gpus.kernel_module or "",
        "accelerator_persistence_service": gpus.persistence_service or "",
        "accelerator_fabric_manager_service": gpus.fabric_manager_service or "",
    }


def gateway_vars(site: SiteConfig, upstreams: dict[str, str], withheld: Iterable[WithheldGrant] = ()) -> dict:
    """The gateway's tenants, routes and model servers (served name -> host:port), in hosts mode and in the cluster:
    what its nginx template and tenants.json are rendered from in both. `withheld`: the grants the quality gate
    withholds (hosts mode; a kubernetes site has no gate)."""
    return {
        "gateway_listen_port": ports.GATEWAY,
        "gateway_models": dict(upstreams),
        "gateway_model_server_idle_connection_s": gateway.MODEL_SERVER_IDLE_CONNECTION_S,
        "gateway_model_names": list(upstreams),
        "gateway_tenants": gateway.tenant_grants(site, withheld),
        "gateway_routes": dict(gateway.MODEL_ROUTES),
        "gateway_model_routes": gateway.model_routes(site),
        "gateway_budgets": gateway.budgets(site),
        "gateway_budget_marks_dir": gateway.BUDGET_MARKS_DIR,
    }


def serve_vars(site: SiteConfig, workspace: SiteWorkspace) -> dict:
    """Hosts mode: the serving roles' variables. Secrets are never here: the converge pipeline gives the plays the
    tenants' key hashes and the gateway's key to its model servers."""
    models = serving_models(site)
    res = site.residency
    return {
        **accelerator_vars(site),
        "model_store_root": DATA_PATHS["model_store"],
        "model_store_store": res.model_store,
        "model_store_models": models,
        "vllm_service_models": models,
        "vllm_service_model_root": DATA_PATHS["model_store"],
        "vllm_service_venv": RUNTIME_VENV,
        "vllm_service_wheelhouse": f"{HOST_BUNDLE_DIR}/wheels",
        "vllm_service_requirements": runtime.requirements(site),
        "vllm_service_egress_rules": f"{SERVICE_RULES_DIR}/model-servers.nft",
        "vllm_service_refused_loopback_ports": sorted(ports.MONITORING),
        "vllm_service_config_dir": MODEL_SERVER_CONFIG_DIR,
        "vllm_service_gateway_key_file": MODEL_SERVER_GATEWAY_KEY_FILE,
        "vllm_service_home": MODEL_SERVER_HOME,
        # what the role keeps for the served models, and nothing else: a model out of the stack leaves none behind
        **model_server_files(models),
        # grants the quality gate withholds, by the gate reports in the site's state folder (sovkit/render/gate.py)
        **gateway_vars(site, {name: f"127.0.0.1:{m['port']}" for name, m in models.items()},
                       withheld_grants(site, read_reports(site, workspace.gate))),
        "gateway_site_ca_dir": str(workspace.pki),
        "gateway_metrics_allowed_cidrs": list(res.in_country_cidrs),
        "gateway_log_metrics_path": gateway.LOG_METRICS_PATH,
        "gateway_log_metrics_address": gateway.LOG_METRICS_ADDRESS,
        "gateway_log_metrics_port": ports.GATEWAY_LOG_METRICS,
        "gateway_log_metrics_sandbox": sandbox.settings("gateway_log_metrics"),
        "gateway_log_retention_days": site.log_retention_days,
        "gateway_log_dir": gateway.ACCESS_LOG_DIR,
        "gateway_budget_keeper_src": str(SOVKIT_PACKAGE / "usage" / "budget_keeper.py"),
        "gateway_budget_keeper_unit": sandbox.services()["budget_keeper"],
        "gateway_budget_keeper_config": gateway.BUDGET_KEEPER_CONFIG,
        "gateway_budget_keeper_dir": gateway.BUDGET_KEEPER_DIR,
        "gateway_budget_keeper_runtime_directory": gateway.BUDGET_KEEPER_RUNTIME_DIRECTORY,
        "gateway_budget_keeper_interval_s": gateway.BUDGET_KEEPER_INTERVAL_S,
        "gateway_budget_keeper_sandbox": sandbox.settings("budget_keeper"),
        "monitoring_retention_days": site.monitoring.monitoring_retention_days,
        # every service's systemd sandbox (sovkit/data/sandbox.yaml), and what the compliance suite holds it to
        "gateway_sandbox": sandbox.settings("gateway"),
        "monitoring_prometheus_sandbox": sandbox.settings("prometheus"),
        "monitoring_node_exporter_sandbox": sandbox.settings("node_exporter"),
        "monitoring_gpu_exporter_sandbox": sandbox.settings("gpu_exporter"),
        "monitoring_alertmanager_sandbox": sandbox.settings("alertmanager"),
        "monitoring_blackbox_sandbox": sandbox.settings("blackbox_exporter"),
        "vllm_service_sandbox": sandbox.settings("model_server"),
        "vllm_service_verifier_sandbox": sandbox.settings("weights_verifier"),
        "vllm_service_weights_verifier_src": str(SOVKIT_PACKAGE / "models" / "verify_weights.py"),
        "vllm_service_signatures_dir": MODEL_SIGNATURES_DIR,
        "model_store_signatures_dir": MODEL_SIGNATURES_DIR,
        # what the folder holds, and nothing else: a model out of the stack, or no longer signed, leaves none behind
        "model_store_signature_files": sorted(f"{MODEL_SIGNATURES_DIR}/{name}.{kind}" for name, model in models.items()
                                              if "signature" in model for kind in ("sig", "pem")),
        "monitoring_ca_cert_src": str(workspace.pki / "ca.crt"),  # the site CA signs every gateway's certificate
        "monitoring_node_exporter_listen": f"0.0.0.0:{ports.NODE_EXPORTER}",
        "monitoring_prometheus_listen": f"0.0.0.0:{ports.PROMETHEUS}",
        "monitoring_prometheus_self_target": f"127.0.0.1:{ports.PROMETHEUS}",
        "monitoring_ca_cert_path": alerting.SITE_CA_PATH,
        "monitoring_alertmanager_listen": alerting.ALERTMANAGER_LISTEN,
        "monitoring_alertmanager_config": alerting.alertmanager_config(site),
        "monitoring_alertmanager_args": alerting.alertmanager_args(),
        "monitoring_blackbox_listen": alerting.BLACKBOX_LISTEN,
        "monitoring_blackbox_config": alerting.blackbox_config(),
        "monitoring_tls_probe_module": alerting.TLS_PROBE_MODULE,
    }


def serving_models(site: SiteConfig) -> dict:
    """Each model's vLLM launch (the one renderer, shared with the chart) and where its weights come from."""
    models = {}
    for served, spec in site.serving.models.items():
        launch = render_vllm(site, served, model_path=f"{DATA_PATHS['model_store']}/{served}")
        models[served] = {"port": launch.port, "args": launch.args, "env": launch.env, "path": launch.model_path,
                          "source": spec.source, "revision": spec.revision, **signed_by(spec)}
    return models


def model_server_files(models: Mapping[str, Mapping]) -> dict[str, list[str]]:
    """The paths the vllm_service role keeps for `models` (served name -> its rendered model, as
    `serving_models` gives): each one's unit, environment file and working folder, and each signed one's weights
    verification. The role removes any other of their kind it finds on the host (retire_stale.yml)."""
    units = sandbox.services()
    return {
        "vllm_service_unit_files": sorted(
            f"{SYSTEMD_UNIT_DIR}/{units['model_server'].format(model=name)}" for name in models),
        "vllm_service_env_files": sorted(f"{MODEL_SERVER_CONFIG_DIR}/{name}.env" for name in models),
        "vllm_service_model_dirs": sorted(f"{MODEL_SERVER_HOME}/{name}" for name in models),
        "vllm_service_verification_unit_files": sorted(
            f"{SYSTEMD_UNIT_DIR}/{units['weights_verifier'].format(model=name)}"
            for name, model in models.items() if "signature" in model),
    }


def is_signed(spec: ModelSpec) -> bool:
    return spec.signature is not None and spec.signer is not None


def signed_by(spec: ModelSpec) -> dict:
    """A signed model's signature (where it lies in the store) and its signer (the PEM the site trusts, as text: the
    hosts verify with it); nothing for a model proven by its revision alone."""
    if not is_signed(spec):
        return {}
    try:
        signer = signer_file(spec.signer).read_text()
    except (OSError, UnicodeDecodeError):
        signer = ""  # validate has refused it (sovkit.config.signers); the model server would not start
    return {"signature": signature_location(spec), "signer": signer}


def host_vars(site: SiteConfig, node: Node, addresses: Mapping[str, str]) -> dict:
    """The role variables of one host: its SSH port and account, its firewall, and (hosts mode) its part in
    serving and monitoring."""
    address = _address_of(node, addresses) or node.name
    variables: dict = {
        "os_baseline_ssh_port": node.ssh_port,
        "residency_network_ssh_port": node.ssh_port,
        # the play's own account stays allowed to log in (no lock-out)
        "os_baseline_ssh_admin_users": [] if node.ssh_user == "root" else [node.ssh_user],
        "residency_network_inbound": inbound_rules(site, node, addresses),
    }
    if site.platform.mode != "hosts":
        if runs_rke2(site):
            variables.update(expected_accelerators(site, node))
            variables["rke2_config"] = rke2.node_config(site, node, addresses)
            variables["rke2_server"] = node.role == "control_plane"
            variables["rke2_api_address"] = api_address(site, addresses) or address
        return {**variables, "sandbox_units": []}  # the cluster runs them
    serving = site.serving_nodes()
    variables.update(expected_accelerators(site, node))
    variables["vllm_service_devices"] = model_devices(site, node)
    variables.update(gpu_exporter_vars(site, node))
    if node in serving:
        variables["gateway_tls_subject_alt_names"] = [f"IP:{address}", f"DNS:{node.name}"]
    prometheus = bool(serving) and node == serving[0]
    variables["monitoring_prometheus_enabled"] = prometheus
    variables["sandbox_units"] = sandboxed_units(site, node)
    if prometheus:
        variables["monitoring_node_targets"] = [
            f"{_bracket(_address_of(n, addresses) or n.name)}:{ports.NODE_EXPORTER}" for n in site.nodes]
        # One scrape job per model, its targets every serving node's gateway (Prometheus refuses a job twice).
        gateways = [f"{_bracket(_address_of(n, addresses) or n.name)}:{ports.GATEWAY}" for n in serving]
        variables["monitoring_tls_probe_targets"] = gateways
        variables["monitoring_gateway_log_metrics"] = {"targets": gateways, "metrics_path": gateway.LOG_METRICS_PATH}
        variables["monitoring_model_targets"] = [
            {"served_model": name, "metrics_path": f"/metrics/{name}", "scheme": "https", "targets": gateways}
            for name in site.serving.models]
        variables["monitoring_gpu_targets"] = [
            f"{_bracket(_address_of(n, addresses) or n.name)}:{ports.GPU_EXPORTER}"
            for n in serving if runs_gpu_exporter(site, n)]
    return variables


def expected_accelerators(site: SiteConfig, node: Node) -> dict:
    """What the accelerator role holds a host's GPUs to (the stack's count, model and the catalogue's memory), and
    Fabric Manager's packages on NVSwitch boards."""
    return {
        "accelerator_expected_count": node.accelerator_count,
        "accelerator_expected_model": node.accelerator_model or "",
        "accelerator_expected_memory_mib": (
            site.accelerator_memory_mib(node.accelerator_model) if node.accelerator_model else 0),
        "accelerator_fabric_manager_packages": vendor(site.accelerator.accelerator).fabric_manager_install(
            site.accelerator.accelerator_driver_version or "",
            runtime.driver_branch(site.accelerator.accelerator_driver_version) or 0,
        ) if on_nvswitch_board(node.accelerator_model, node.accelerator_count) else [],
    }


def sandboxed_units(site: SiteConfig, node: Node) -> list[str]:
    """The units of the kit's services this hosts-mode node runs (each held to the sandbox's exposure)."""
    units = sandbox.services()
    serving = site.serving_nodes()
    out = [units["node_exporter"]]
    if node in serving:
        out += [units["gateway"], units["gateway_log_metrics"], units["budget_keeper"],
                *(units["model_server"].format(model=name) for name in site.serving.models),
                *(units["weights_verifier"].format(model=name) for name, spec in site.serving.models.items()
                  if is_signed(spec))]
    if serving and node == serving[0]:
        out += [units["prometheus"], units["alertmanager"], units["blackbox_exporter"]]
    if runs_gpu_exporter(site, node):
        out.append(units["gpu_exporter"])
    return sorted(out)


def runs_gpu_exporter(site: SiteConfig, node: Node) -> bool:
    """Hosts mode: a serving node with GPUs of a vendor that names a hosts-mode exporter runs it."""
    return bool(vendor(site.accelerator.accelerator).hosts_metrics_exporter and node.accelerator_count
                and node in site.serving_nodes())


def gpu_exporter_vars(site: SiteConfig, node: Node) -> dict:
    """The vendor's GPU exporter where the node runs one, from the serving runtime's venv and allowed every GPU of
    the node (it reads them all, through the driver's device nodes)."""
    if not runs_gpu_exporter(site, node):
        return {"monitoring_gpu_exporter_enabled": False}
    gpus = vendor(site.accelerator.accelerator)
    return {"monitoring_gpu_exporter_enabled": True,
            "monitoring_gpu_exporter_src": str(SOVKIT_PACKAGE / gpus.hosts_metrics_exporter),
            "monitoring_gpu_exporter_python": f"{RUNTIME_VENV}/bin/python",
            "monitoring_gpu_exporter_listen": f"0.0.0.0:{ports.GPU_EXPORTER}",
            "monitoring_gpu_exporter_devices": gpus.device_nodes(tuple(range(node.accelerator_count)))}


def model_devices(site: SiteConfig, node: Node) -> dict:
    """Each model's GPUs on `node`, as the planner placed them: the variable that hands them to vLLM and the device
    nodes its unit may open (DeviceAllow), from the vendor's data. Empty on CPU sites."""
    gpus = vendor(site.accelerator.accelerator)
    if not gpus.device_env:
        return {}
    return {served: {"env": {gpus.device_env: ",".join(map(str, indices))},
                     "allow": gpus.device_nodes(indices)}
            for served, indices in devices_on(site, node.name).items()}


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def stack_key_of(variable: str) -> str | None:
    """The stack key a checked role variable is rendered from."""
    return next((p.stack_key for p in PRECONDITIONS if p.variable == variable), None)
