"""Cross-field rules of a stack: what no single field can check. Each rule returns every problem it finds."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs, urlparse

from sovkit.config import checks, cluster, hygiene, rke2, runtime, signers
from sovkit.config.catalogue import check_models, on_nvswitch_board
from sovkit.config.evaluation import evaluation_gates
from sovkit.config.licences import check_licences
from sovkit.config.planner import plan_site
from sovkit.config.schema import PROJECT
from sovkit.config.site import SiteConfig, accelerator_catalogue
from sovkit.config.types import email_domain, host_of_url, is_address, split_host_port
from sovkit.config.vendors import vendor
from sovkit.errors import Problem, short
from sovkit.workspace import HOST_DATA_PATHS

MAX_HOSTS_MODE_NODES = 4  # DESIGN.md: hosts mode is for 1-4 servers; beyond that, kubernetes
APPROVED_BACKENDS = "file:// (a path on in-country storage) or s3://BUCKET?endpoint=IN-COUNTRY-HOST (S3-compatible)"

# A rule sees the site and the plain (non-secret) keys of its file, to catch secrets written in the clear.
Rule = Callable[[SiteConfig, frozenset[str]], Iterable[Problem]]


def key(path: str) -> str:
    return f"{PROJECT}:{path}"


def is_in_country(site: SiteConfig, host: str) -> bool:
    """An IP inside the in-country CIDRs, or a name under an in-country domain (the roles' own rule)."""
    return checks.in_country(host, site.residency.in_country_cidrs, site.residency.in_country_domains)


def _in_country_allowed(site: SiteConfig) -> str:
    cidrs = ", ".join(site.residency.in_country_cidrs)
    domains = ", ".join(site.residency.in_country_domains) or "none listed"
    return f"an address in inCountryCidrs ({cidrs}) or a name under inCountryDomains ({domains})"


def provider_keys(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    infra = site.infrastructure
    needed = {
        "onprem": ["hosts"],
        "openstack": ["openstack_cloud", "openstack_region", "openstack_availability_zone", "openstack_network",
                      "openstack_volume_type", "openstack_node_groups"],
        "local": ["local_nodes", "local_network_cidr"],
    }
    camel = {name: f.alias for name, f in type(infra).model_fields.items()}
    for provider, fields in needed.items():
        for name in fields:
            value = getattr(infra, name)
            if provider == infra.provider and not value:
                yield Problem(key(camel[name]), short(value), f"required when provider is {provider}")
            elif provider != infra.provider and value:
                yield Problem(key(camel[name]), "set", f"only with provider {provider}; this site is {infra.provider}",
                              fix=f"remove {camel[name]} or change provider")
    if infra.provider == "local":
        if site.accelerator.accelerator != "cpu":
            yield Problem(key("accelerator"), short(site.accelerator.accelerator), "cpu with provider local",
                          fix="local hosts are containers on this machine, which has no accelerator")
        if site.platform.mode != "hosts":
            yield Problem(key("mode"), short(site.platform.mode), "hosts with provider local",
                          fix="Kubernetes cannot run inside the local test containers")
    if not site.nodes:
        yield Problem(key("hosts" if infra.provider == "onprem" else "localNodes"), "no nodes", "at least one node")
    if infra.provider == "openstack":
        if infra.openstack_floating_ip and not infra.openstack_floating_ip_pool:
            yield Problem(key("openstackFloatingIpPool"), "nothing", "the external network the gateway's floating IP "
                          "comes from, when openstackFloatingIp is true",
                          fix="set openstackFloatingIpPool, or openstackFloatingIp: false (reach the gateway through "
                              "the tenant network)")
        if not infra.openstack_ssh_public_key:
            yield Problem(key("openstackSshPublicKey"), "nothing", "the absolute path of the OpenSSH public key the "
                          "servers' login user accepts", fix="without it nobody can log into the servers sovkit makes")
    elif infra.openstack_floating_ip_pool or infra.openstack_ssh_public_key:
        name = "openstackFloatingIpPool" if infra.openstack_floating_ip_pool else "openstackSshPublicKey"
        yield Problem(key(name), "set", f"only with provider openstack; this site is {infra.provider}")


def key_files(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Files the kit reads on the machine running it (keys, CA certificates) are named by absolute path."""
    res = site.residency
    named = {"aptMirrorKey": res.apt_mirror_key, "openstackSshPublicKey": site.infrastructure.openstack_ssh_public_key,
             **{f"trustedCaFiles[{i}]": path for i, path in enumerate(res.trusted_ca_files)},
             **{f"aptRepositories.{name}.signingKey": repo.signing_key for name, repo in res.apt_repositories.items()}}
    for path, value in named.items():
        if value is not None and not value.startswith("/"):
            yield Problem(key(path), short(value), "an absolute path on the machine running sovkit")
    for name, repo in res.apt_repositories.items():
        if repo.signing_key is None and not repo.url.startswith("file://"):
            yield Problem(key(f"aptRepositories.{name}.signingKey"), "nothing",
                          "the OpenPGP public key that signs the repository", fix="apt refuses unsigned repositories; "
                          "give the vendor's key as mirrored in-country")


def model_fit(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """The planner's verdict: a model that does not fit its nodes is refused here, not when it is deployed."""
    served = site.serving.models
    for plan in plan_site(site):
        if plan.fits:
            continue
        yield Problem(key(f"models.{plan.served_name}"), short(served[plan.served_name].catalogue),
                      "a model that fits its nodes", fix=f"{plan.problem}. " + (
                          "Would fit: " + "; ".join(plan.suggestions) if plan.suggestions else
                          f"run `sovkit plan {site.name}` for the figures"))


def accelerators(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    catalogue = accelerator_catalogue()
    vendor = site.accelerator.accelerator
    for node in site.nodes:
        path = _node_path(site, node.name, node.role)
        if node.accelerator_model is None:
            if node.accelerator_count:
                yield Problem(key(f"{path}.accelerator.model"), "nothing", "the model of the counted accelerators")
            continue
        if node.accelerator_model not in catalogue:
            yield Problem(key(f"{path}.accelerator.model"), short(node.accelerator_model),
                          "one of " + ", ".join(catalogue))
        elif catalogue[node.accelerator_model]["vendor"] != vendor:
            yield Problem(key(f"{path}.accelerator.model"), short(node.accelerator_model),
                          f"a {vendor} accelerator, as the site's accelerator is {vendor}")
        if node.accelerator_count == 0:
            yield Problem(key(f"{path}.accelerator.count"), "0", "1 or more when a model is named")
    if vendor == "cpu":
        if site.accelerator.accelerator_driver_version or site.accelerator.accelerator_toolkit_version:
            yield Problem(key("acceleratorDriverVersion"), "set", "nothing for a cpu site")
    else:
        versions = {"acceleratorDriverVersion": site.accelerator.accelerator_driver_version}
        if site.platform.mode == "kubernetes":  # in hosts mode the runtime lock brings the toolkit (CUDA, ROCm)
            versions["acceleratorToolkitVersion"] = site.accelerator.accelerator_toolkit_version
        for field_name, version in versions.items():
            if not version:
                yield Problem(key(field_name), "nothing", f"the pinned {vendor} version to install")


def installs_driver(site: SiteConfig) -> bool:
    """The kit installs the GPU vendor's driver on the site's hosts (the accelerator role): in hosts mode on the
    serving hosts, and in kubernetes mode on the GPU nodes of the cluster it bootstraps (playbooks/platform.yml). An
    existing cluster's GPU nodes come with their driver (kubeconfig); a cpu site has none."""
    return site.accelerator.accelerator != "cpu" and (site.platform.mode == "hosts" or rke2.runs_rke2(site))


def serving_runtime(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Hosts mode installs the vendor's locked runtime on the site's driver: the driver branch must run the
    device runtime the lock's wheels are built on (CUDA 13 needs 580). Where the driver comes from is driver_source's
    rule. (Kubernetes mode serves the chart's image on the host's driver.)"""
    name = site.accelerator.accelerator
    if site.platform.mode != "hosts" or name == "cpu":
        return
    if runtime.vendor_lock(name) is None:
        yield Problem(key("accelerator"), name, "in hosts mode, an accelerator whose serving runtime sovkit locks: "
                      + ", ".join(runtime.shipped_locks()),
                      fix=runtime.how_to_lock(name))
        return
    known, device = vendor(name), runtime.device_runtime(name)
    version = site.accelerator.accelerator_driver_version
    branch = runtime.driver_branch(version)
    toolkit = site.accelerator.accelerator_toolkit_version
    if device and toolkit and toolkit != device.release:
        yield Problem(key("acceleratorToolkitVersion"), short(toolkit),
                      f"{device.release} (the {device.name} release the serving runtime, {device.serving}, brings), "
                      "or nothing")
    if device is None or branch is None:
        return
    mirror, debian = f"aptRepositories.{name}", known.debian_driver_branch
    minimum = known.driver_minimum_branch.get(device.major)
    if minimum and branch < minimum:
        older = runtime.newest_runtime_major(name, debian) if debian else None
        debian_path = (f", or run Debian 12's branch {debian}, which runs {device.name} {older}.x at most, with a "
                       f"runtime lock built on {device.name} {older} (sovkit's {name} lock is built on "
                       f"{device.name} {device.release})") if older else ""
        yield Problem(key("acceleratorDriverVersion"), short(version),
                      f"branch {minimum} or later: the serving runtime ({device.serving}) is built on "
                      f"{device.name} {device.release}, which needs it",
                      fix=f"Either install branch {minimum} or later from the vendor's repository mirrored "
                          f"in-country ({mirror}, a mirror of {known.driver_repository}){debian_path}")


def driver_source(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Wherever the kit installs the driver (installs_driver: hosts mode, and the GPU nodes of an RKE2 cluster it
    bootstraps), the role asks apt for the driver at the stack's version, from the sources os_baseline writes: the
    branch Debian 12 carries, or the vendor's repository mirrored in-country (aptRepositories.<vendor>; the role's
    package names follow the same choice, sovkit/render/role_vars.py accelerator_vars). A branch neither carries, or
    a vendor whose drivers Debian 12 does not carry at all (AMD) without its repository, would fail on the live hosts,
    after the hardening; it is refused here."""
    name = site.accelerator.accelerator
    if not installs_driver(site):
        return
    known = vendor(name)
    version = site.accelerator.accelerator_driver_version
    branch = runtime.driver_branch(version)
    if version and branch is None:
        yield Problem(key("acceleratorDriverVersion"), short(version), "a driver version, e.g. 580.95.05")
        return
    debian, mirror = known.debian_driver_branch, f"aptRepositories.{name}"
    where = "on the serving hosts" if site.platform.mode == "hosts" else "on the cluster's GPU nodes"
    if name in site.residency.apt_repositories:
        return
    if debian is None:  # Debian 12 carries none of this vendor's drivers (AMD's amdgpu-dkms)
        yield Problem(key(mirror), "nothing",
                      f"the vendor's driver repository mirrored in-country as {mirror}: Debian 12 carries no "
                      f"{known.title} driver, and the kit installs it {where}", fix=_mirror_repository(name))
        return
    if branch is None or branch == debian:
        return
    yield Problem(key("acceleratorDriverVersion"), short(version),
                  f"branch {debian} (what Debian 12 carries), or a branch from the vendor's repository mirrored "
                  f"in-country as {mirror} (the kit installs the driver {where})",
                  fix=_mirror_repository(name))


def fabric_manager_source(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Wherever the kit installs the driver (installs_driver), it installs NVIDIA Fabric Manager on hosts whose GPUs
    sit on an NVSwitch board (CUDA sees none of them without it), at the driver's exact version. Debian does not carry
    it: only NVIDIA's repository, mirrored in-country, does. (An existing cluster's nodes come with theirs.)"""
    name = site.accelerator.accelerator
    if not installs_driver(site) or not vendor(name).fabric_manager_package:
        return
    boards = [f"{_node_path(site, n.name, n.role)} ({n.accelerator_count}x {n.accelerator_model})" for n in site.nodes
              if on_nvswitch_board(n.accelerator_model, n.accelerator_count)]
    mirror = f"aptRepositories.{name}"
    if boards and name not in site.residency.apt_repositories:
        yield Problem(key(mirror), "nothing, with GPUs on an NVSwitch board at " + ", ".join(boards),
                      f"NVIDIA's Debian 12 repository mirrored in-country as {mirror}: NVSwitch boards need NVIDIA "
                      "Fabric Manager at the driver's version, which Debian does not carry",
                      fix=_mirror_repository(name))


def _mirror_repository(name: str) -> str:
    """How a site gets the vendor's own packages: its repository, mirrored in-country under aptRepositories."""
    return (f"mirror {vendor(name).driver_repository} in-country and name it aptRepositories.{name}, with its "
            "signing key")


def _node_path(site: SiteConfig, name: str, role: str) -> str:
    provider = site.infrastructure.provider
    return f"hosts.{name}" if provider == "onprem" else f"openstackNodeGroups.{role}"


def model_placement(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    vendor = site.accelerator.accelerator
    for served, model in site.serving.models.items():
        path = f"models.{served}"
        role = site.model_role(model)
        nodes = site.nodes_with_role(role)
        if not nodes:
            yield Problem(key(f"{path}.nodeRole"), role, "a role that has nodes: " + _roles_present(site))
            continue
        if vendor == "cpu":
            if model.tensor_parallel not in ("auto", 1):
                yield Problem(key(f"{path}.tensorParallel"), str(model.tensor_parallel), "auto or 1 on a cpu site")
            continue
        bare = [n.name for n in nodes if not n.accelerator_count]
        if bare:
            yield Problem(key(f"{path}.nodeRole"), role,
                          f"nodes with {vendor} accelerators; {', '.join(bare)} have none",
                          fix="give those hosts accelerators or place the model on gpu_worker nodes")
            continue
        tp = model.tensor_parallel
        if tp == "auto":
            continue
        per_node = sorted({n.accelerator_count for n in nodes})
        total = sum(n.accelerator_count for n in nodes)
        smallest = per_node[0]
        if tp <= smallest:
            if any(c % tp for c in per_node):
                divisors = [d for d in range(1, smallest + 1) if all(c % d == 0 for c in per_node)]
                yield Problem(key(f"{path}.tensorParallel"), str(tp),
                              f"a divisor of the GPUs per {role} node ({', '.join(map(str, per_node))}): "
                              f"{', '.join(map(str, divisors))}, or auto")
        elif len(per_node) > 1 or tp % smallest or tp > total:
            yield Problem(key(f"{path}.tensorParallel"), str(tp),
                          f"a divisor of {smallest} (GPUs per node), or a multiple of it up to {total} "
                          "(GPUs of all its nodes) to span nodes, or auto")
        elif site.platform.mode != "kubernetes":
            yield Problem(key(f"{path}.tensorParallel"), str(tp),
                          f"at most {smallest} (one node's GPUs) in hosts mode",
                          fix="a model spanning nodes needs mode kubernetes (LeaderWorkerSet)")
        elif model.replicas * tp > total:
            yield Problem(key(f"{path}.replicas"), str(model.replicas),
                          f"at most {total // tp} replicas of {tp} GPUs on {total} GPUs")


def _roles_present(site: SiteConfig) -> str:
    return ", ".join(sorted({n.role for n in site.nodes})) or "none"


def tenants(site: SiteConfig, plain_keys: frozenset[str]) -> Iterable[Problem]:
    served = site.serving.models
    for name, tenant in site.serving.tenants.items():
        grant = {"models": list(tenant.models), "requests_per_minute": tenant.rate_limit.requests_per_minute}
        yield from from_findings("tenants", checks.grants({name: grant}, list(served)))
        secret = tenant.api_key.pulumi_secret
        if secret is not None and f"{PROJECT}:{secret}" in plain_keys:
            yield Problem(key(secret), "an API key in plain text", "a secret config value",
                          fix=f"remove it and run: pulumi config set --secret {secret} <key>")


def token_budgets(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Budgets are kept by the budget keeper beside a hosts-mode gateway, from that gateway's own access log: a
    site with more than one gateway would let a tenant spend its budget once per gateway, so sovkit refuses it."""
    budgeted = sorted(name for name, tenant in site.serving.tenants.items() if tenant.budget is not None)
    if not budgeted:
        return
    where = key(f"tenants.{budgeted[0]}.budget")
    if site.platform.mode != "hosts":
        yield Problem(where, f"a token budget in {site.platform.mode} mode",
                      "token budgets only in hosts mode (the cluster's gateway runs without the budget keeper)")
        return
    gateways = [n.name for n in site.serving_nodes()]
    if len(gateways) > 1:
        yield Problem(where, f"a token budget on a site of {len(gateways)} gateways ({', '.join(gateways)})",
                      "token budgets only on a site whose models all run on one host (one gateway keeps the count)",
                      fix="remove the budgets, or serve every model from one host")


def from_findings(path: str, findings: Iterable[checks.Finding], fix: str = "") -> Iterable[Problem]:
    """A check's findings on the stack value at `path` (a config key without the project prefix), as Problems."""
    for finding in findings:
        yield Problem(key(path + finding.at), finding.found, finding.allowed, fix=finding.fix or fix)


def networks(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    res = site.residency
    in_country = [ipaddress.ip_network(c) for c in res.in_country_cidrs]
    yield from from_findings("inCountryCidrs", checks.networks(list(res.in_country_cidrs)))
    yield from from_findings("adminCidrs", checks.admin_networks(list(res.admin_cidrs), list(res.in_country_cidrs)))
    seen_addr: dict[str, str] = {}
    for node in site.nodes:
        if node.address is None or site.infrastructure.provider != "onprem":
            continue
        path = key(f"hosts.{node.name}.address")
        if node.address in seen_addr:
            yield Problem(path, node.address, f"an address no other host has (also on {seen_addr[node.address]})")
        seen_addr[node.address] = node.name
        if not checks.inside(node.address, res.in_country_cidrs):
            yield Problem(path, node.address, "an address inside inCountryCidrs: the site's hosts are in-country")
    if site.platform.mode == "kubernetes":
        internal = {"clusterCidr": site.platform.cluster_cidr, "serviceCidr": site.platform.service_cidr}
        for name, cidr in internal.items():
            net = ipaddress.ip_network(cidr)
            clash = [str(n) for n in in_country if n.version == net.version and n.overlaps(net)]
            clash += [a for a in seen_addr if checks.inside(a, [cidr])]
            if clash:
                yield Problem(key(name), cidr, f"a network that does not overlap {', '.join(clash)}")
        if ipaddress.ip_network(internal["clusterCidr"]).overlaps(ipaddress.ip_network(internal["serviceCidr"])):
            yield Problem(key("serviceCidr"), internal["serviceCidr"], "a network apart from clusterCidr")


def in_country_services(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    res = site.residency
    allowed = _in_country_allowed(site)
    for field_name, hosts in (("ntpServers", res.ntp_servers), ("dnsResolvers", res.dns_resolvers)):
        yield from from_findings(field_name, checks.in_country_addresses(list(hosts), list(res.in_country_cidrs)))
    collectors = [res.log_collector] if res.log_collector else []
    yield from (Problem(key("logCollector"), f.found, f.allowed) for f in checks.collectors(
        collectors, list(res.in_country_cidrs), list(res.in_country_domains)))
    urls = {"aptMirror": res.apt_mirror, "modelStore": res.model_store,
            "containerRegistry": "oci://" + res.container_registry}
    for field_name, url in urls.items():
        if url.startswith(("file://", "/")):
            continue
        host = host_of_url(url)
        if host is None or not is_in_country(site, host):
            yield Problem(key(field_name), short(url.removeprefix("oci://")), allowed)
    for name, receiver in site.monitoring.alert_receivers.items():
        host = email_domain(receiver.email) if receiver.email else host_of_url(receiver.webhook or "")
        if host is None or not is_in_country(site, host):
            yield Problem(key(f"alertReceivers.{name}"), short(receiver.email or receiver.webhook), allowed,
                          fix="alerts carry site details; send them only to in-country receivers")
    relay = site.monitoring.smtp_relay
    if relay and not is_in_country(site, split_host_port(relay.address)[0]):
        yield Problem(key("smtpRelay.address"), short(relay.address), allowed,
                      fix="alert mail carries site details; relay it only through an in-country server")


def alert_delivery(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Alertmanager sends mail through one relay (its smarthost): an email receiver needs the site's relay."""
    emails = sorted(name for name, receiver in site.monitoring.alert_receivers.items() if receiver.email)
    if emails and site.monitoring.smtp_relay is None:
        yield Problem(key("smtpRelay"), "nothing",
                      f"the in-country mail relay the email receivers ({', '.join(emails)}) are reached through, "
                      "such as {address: mail.gov.example:25}")


def allowed_endpoints(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    for endpoint, why in site.residency.allowed_endpoints.items():
        path = key(f"allowedEndpoints.{endpoint}")
        try:
            host, port = split_host_port(endpoint)
        except ValueError as err:
            yield Problem(path, short(endpoint), str(err))
            continue
        for finding in checks.endpoint(host, port, why):  # the stack key is the endpoint: one path for all three
            fix = ("resolve the name through the site's own resolvers and give the address"
                   if finding.at == ".host" and not is_address(host) else "")
            yield Problem(path, finding.found, finding.allowed, fix=fix)


def hosts_mode_models(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Hosts mode places each model's files itself and proves them one by one: what the model store role reads.
    And every node of a model's role runs one replica of it, behind its own gateway: replicas says how many nodes."""
    if site.platform.mode != "hosts":
        return
    for name, model in site.serving.models.items():
        nodes = len(site.nodes_with_role(site.model_role(model)))
        if nodes and model.replicas != nodes:
            yield Problem(key(f"models.{name}.replicas"), str(model.replicas),
                          f"{nodes}: in hosts mode every {site.model_role(model)} node runs one replica",
                          fix=f"set replicas: {nodes}, or change the number of {site.model_role(model)} nodes")
    models = {name: {"source": m.source, "revision": m.revision} for name, m in site.serving.models.items()}
    yield from from_findings("models", checks.model_sources(models, HOST_DATA_PATHS["model_store"],
                                                            site.residency.model_store))


def state_backend(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    url = site.residency.state_backend
    parsed = urlparse(url)
    approved = False
    if parsed.scheme == "file" and url.startswith("file://"):
        approved = True
    elif parsed.scheme == "s3":
        endpoint = parse_qs(parsed.query).get("endpoint", [""])[0]
        approved = bool(endpoint) and is_in_country(site, host_of_url("https://" + endpoint) or "")
    if not approved and not site.residency.state_backend_waiver:
        yield Problem(key("stateBackend"), short(url), APPROVED_BACKENDS,
                      fix="state holds secrets and the whole inventory: keep it in-country, or set "
                          "stateBackendWaiver to a written justification (40+ characters)")


def retention(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    minimum, basis = site.log_retention_minimum
    yield from from_findings("logRetentionDays", checks.retention(site.log_retention_days, minimum, basis))


def platform(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    if site.platform.mode == "hosts":
        if len(site.nodes) > MAX_HOSTS_MODE_NODES:
            yield Problem(key("mode"), "hosts", f"kubernetes for more than {MAX_HOSTS_MODE_NODES} nodes "
                          f"(this site has {len(site.nodes)})")
        for name, value in (("rke2Version", site.platform.rke2_version), ("kubeconfig", site.platform.kubeconfig),
                            ("gatewayHostname", site.platform.gateway_hostname),
                            ("modelStoreCredentials", site.residency.model_store_credentials)):
            if value:
                yield Problem(key(name), "set", "only with mode kubernetes")
        return
    if site.platform.kubeconfig is not None:  # an existing cluster: nothing is bootstrapped
        yield from existing_cluster(site)
        return
    if not site.platform.rke2_version:
        yield Problem(key("rke2Version"), "nothing", "a pinned RKE2 release such as v1.33.5+rke2r1",
                      fix="or name an existing cluster's kubeconfig (kubeconfig: {pulumiSecret: ...})")
    if not site.platform.cis_profile:
        yield Problem(key("cisProfile"), "false", "true: sovkit runs RKE2 only with its CIS profile")
    if not site.nodes_with_role("control_plane"):
        yield Problem(key("hosts"), "no control_plane node", "at least one control_plane node in kubernetes mode")


def existing_cluster(site: SiteConfig) -> Iterable[Problem]:
    """A stack that names a kubeconfig deploys into a cluster it did not make: no RKE2 release, and its hosts are
    the cluster's nodes by node name (for their labels), not servers sovkit creates."""
    if site.platform.rke2_version:
        yield Problem(key("rke2Version"), site.platform.rke2_version, "nothing with kubeconfig (sovkit bootstraps no "
                      "RKE2 on an existing cluster)", fix="remove rke2Version, or remove kubeconfig to bootstrap RKE2")
    if site.infrastructure.provider != "onprem":
        yield Problem(key("provider"), site.infrastructure.provider, "onprem with kubeconfig: hosts lists the "
                      "existing cluster's nodes by node name", fix="list the cluster's nodes under hosts")


RULES: tuple[Rule, ...] = (provider_keys, key_files, accelerators, serving_runtime, driver_source,
                           fabric_manager_source, check_models, check_licences, model_placement, hosts_mode_models,
                           tenants, token_budgets, networks, in_country_services, alert_delivery, allowed_endpoints,
                           state_backend, retention, platform, *cluster.RULES, *rke2.RULES, *signers.RULES,
                           evaluation_gates, *hygiene.RULES)
# Rules that need a coherent site (known models on placeable nodes): they run once the rules above pass.
SITE_RULES: tuple[Rule, ...] = (model_fit,)


def check(site: SiteConfig, plain_keys: frozenset[str], *, fit: bool = True) -> list[Problem]:
    problems = [problem for rule in RULES for problem in rule(site, plain_keys)]
    if problems or not fit:
        return problems
    return [problem for rule in SITE_RULES for problem in rule(site, plain_keys)]
