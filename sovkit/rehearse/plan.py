"""What a rehearsal of a site stands up, decided from its stack alone (a pure function, tested without hosts).

Every machine keeps the site's own name and address; the in-country services the stack names get the addresses
the stack gives (resolvers, NTP servers) or, when the stack names them by host name (the mirror, the model store,
alert receivers), an address of the site's own networks that the stand-in resolver answers for. This machine
plays the site's admin machine, at an address inside the admin networks. What cannot exist here is substituted
and said so (`Substitution`), and what the site names but nothing here uses is listed with the reason.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from sovkit.config import SiteConfig
from sovkit.config.types import email_domain, host_of_url, is_address, split_host_port
from sovkit.config.vendors import vendor as vendor_data
from sovkit.render import alerting

# What CIS Debian 12 (1.1.2.x.1, Level 2) asks an installer to make a file system of its own, as a rehearsal VM
# has them (sovkit.rehearse.vms): path -> GiB
SEPARATE_FILE_SYSTEMS = {"/var": 2, "/var/tmp": 1, "/var/log": 1, "/var/log/audit": 1, "/home": 1}
FIRST_NODE_OFFSET = 10  # where a cloud's addresses start in the rehearsal, as OpenStack's DHCP pools often do
SERVICE_OFFSET = 200  # named services count down from here, away from the nodes


@dataclass(frozen=True)
class Machine:
    """A host of the site: its name, role, addresses (CIDR notation: address/prefix of its network), login."""

    name: str
    role: str
    addresses: tuple[str, ...]
    ssh_user: str
    ssh_port: int
    vm: bool = False  # a virtual machine with its own kernel (`--vm`), else a podman host

    @property
    def address(self) -> str:
        return self.addresses[0].split("/")[0]


@dataclass(frozen=True)
class Substitution:
    """Something of the site that cannot exist here, and what stands in for it."""

    what: str
    site: str
    rehearsal: str
    why: str

    def line(self) -> str:
        return f"{self.what}: {self.site} -> {self.rehearsal} ({self.why})"


MAIL_RELAY = "mail relay"


@dataclass(frozen=True)
class NamedService:
    """An in-country service the stack names by URL: where it answers in the rehearsal."""

    purpose: str  # mirror, model store, webhook receiver, ...
    url: str
    host: str
    address: str
    stood_up: bool
    why_not: str = ""

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def port(self) -> int:
        explicit = self.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
        if len(explicit) == 2 and explicit[1].isdigit() and "]" not in explicit[1]:
            return int(explicit[1])
        return 443 if self.scheme == "https" else 80

    @property
    def path(self) -> str:
        rest = self.url.split("://", 1)[1]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


@dataclass(frozen=True)
class RehearsalPlan:
    site: SiteConfig
    cidrs: tuple[str, ...]  # the site's networks, all on the rehearsal's one bridge
    controller: tuple[str, ...]  # this machine's addresses as the site's admin machine (CIDR notation)
    hosts: tuple[Machine, ...]
    service_addresses: tuple[str, ...]  # every address the stand-in services answer on (CIDR notation)
    resolvers: tuple[str, ...]
    ntp_servers: tuple[str, ...]
    records: dict[str, tuple[str, ...]]  # name -> addresses the stand-in resolver answers
    mail_exchangers: dict[str, str]  # mail domain of an email receiver -> host name of the relay's stand-in
    services: tuple[NamedService, ...]
    substitutions: tuple[Substitution, ...] = field(default=())

    @property
    def addresses(self) -> dict[str, str]:
        """Each node's address, for the inventory (what an OpenStack cloud would have given)."""
        return {h.name: h.address for h in self.hosts}

    def service(self, purpose: str) -> NamedService | None:
        return next((s for s in self.services if s.purpose == purpose), None)


class PlanError(ValueError):
    """A site the rehearsal cannot lay out (no free address for a service, say); the message says why."""


def _networks(cidrs: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(c) for c in cidrs]


def _with_prefix(address: str, networks: list) -> str:
    ip = ipaddress.ip_address(address)
    containing = [n for n in networks if n.version == ip.version and ip in n]
    if not containing:
        raise PlanError(f"{address} is in none of the site's in-country networks, so nothing in the rehearsal can "
                        "reach it")
    return f"{ip}/{min(n.prefixlen for n in containing)}"


class _Addresses:
    """Free addresses of the site's networks, handed out once each."""

    def __init__(self, taken: Iterable[str]) -> None:
        self.taken = {ipaddress.ip_address(a) for a in taken}

    def take(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network, start: int, step: int = 1,
             avoid: Iterable = ()) -> str:
        avoided = list(avoid)
        offset = start
        while 0 < offset < min(network.num_addresses - 1, 1 << 16):
            candidate = network[offset]
            if candidate not in self.taken and not any(candidate in a for a in avoided):
                self.taken.add(candidate)
                return str(candidate)
            offset += step
        raise PlanError(f"no free address left in {network} for the rehearsal")


def vm_hosts(site: SiteConfig, names: Iterable[str]) -> set[str]:
    """The hosts `--vm` names put on virtual machines: each name is a host of the site or a role (all its hosts)."""
    hosts = {n.name for n in site.nodes}
    roles = {n.role for n in site.nodes}
    chosen = set()
    for name in names:
        if name not in hosts | roles:
            raise PlanError(f"{site.source}: --vm {name}: the site has no such host or role; allowed: hosts "
                            f"{', '.join(sorted(hosts))}; roles {', '.join(sorted(roles))}")
        chosen |= {n.name for n in site.nodes if name in (n.name, n.role)}
    return chosen


def plan(site: SiteConfig, vms: Iterable[str] = ()) -> RehearsalPlan:
    """The rehearsal of `site`, with the hosts or roles named in `vms` on virtual machines (see `vm_hosts`)."""
    on_vms = vm_hosts(site, vms)
    res = site.residency
    networks = _networks(res.in_country_cidrs)
    admin = _networks(res.admin_cidrs)
    fixed = [n.address for n in site.nodes if n.address] + list(res.dns_resolvers) + list(res.ntp_servers)
    urls = _service_urls(site)
    fixed += [host_of_url(url) or "" for _, url in urls if is_address(host_of_url(url) or "")]
    pool = _Addresses(fixed)
    controller = []
    for family in (4, 6):
        nets = [n for n in admin if n.version == family]
        if nets:
            start = 0 if nets[0].num_addresses == 1 else 1
            controller.append(_with_prefix(pool.take(nets[0], start), networks))
    if not controller:
        raise PlanError("the site names no admin network, so no machine may run its plays")
    home = next(n for n in networks if n.version == 4 and any(a.subnet_of(n) for a in admin if a.version == 4)) \
        if any(a.version == 4 for a in admin) else networks[0]
    hosts = []
    for node in site.nodes:
        address = node.address or pool.take(home, FIRST_NODE_OFFSET, avoid=admin)
        hosts.append(Machine(node.name, node.role, (_with_prefix(address, networks),), node.ssh_user, node.ssh_port,
                             vm=node.name in on_vms))
    records: dict[str, tuple[str, ...]] = {}
    services = []
    service_addresses = {*(str(a) for a in res.dns_resolvers), *(str(a) for a in res.ntp_servers)}
    for purpose, url in urls:
        host = host_of_url(url) or ""
        if is_address(host):
            address = host
        elif host in records:
            address = records[host][0]
        else:
            address = pool.take(home, min(SERVICE_OFFSET, home.num_addresses - 2), step=-1, avoid=admin)
            records[host] = (address,)
        stood_up, why = _stood_up(site, purpose)
        services.append(NamedService(purpose, url, host, address, stood_up, why))
        if stood_up:
            service_addresses.add(address)
    # The relay also answers as each receiver's mail exchanger: MX lookups of the receivers' domains find it.
    relay = next((s.host for s in services if s.purpose == MAIL_RELAY), None)
    mail = {email_domain(r.email): relay for r in site.monitoring.alert_receivers.values() if r.email and relay}
    return RehearsalPlan(
        site=site, cidrs=tuple(str(n) for n in networks), controller=tuple(controller), hosts=tuple(hosts),
        service_addresses=tuple(sorted(_with_prefix(a, networks) for a in service_addresses)),
        resolvers=tuple(res.dns_resolvers), ntp_servers=tuple(res.ntp_servers), records=records,
        mail_exchangers=mail, services=tuple(services), substitutions=tuple(substitutions(site, hosts)))


def _service_urls(site: SiteConfig) -> list[tuple[str, str]]:
    """(purpose, URL) of every in-country service the stack names by URL, in a stable order."""
    res = site.residency
    urls = []
    if not res.apt_mirror.startswith("file:"):
        urls.append(("mirror", res.apt_mirror))
    for name, repo in sorted(res.apt_repositories.items()):
        if not repo.url.startswith("file:"):
            urls.append((f"vendor repository {name}", repo.url))
    if "://" in res.model_store:
        urls.append(("model store", res.model_store))
    urls.append(("container registry", "https://" + res.container_registry))
    if res.state_backend.startswith("s3://") and "endpoint=" in res.state_backend:
        endpoint = res.state_backend.split("endpoint=", 1)[1].split("&", 1)[0]
        urls.append(("state backend", "https://" + endpoint))
    for name, receiver in sorted(site.monitoring.alert_receivers.items()):
        if receiver.webhook:
            urls.append((f"alert receiver {name}", receiver.webhook))
    if site.monitoring.smtp_relay:
        host, port = split_host_port(site.monitoring.smtp_relay.address)
        scheme = "smtps" if port == alerting.SMTPS_PORT else "smtp"
        urls.append((MAIL_RELAY, f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"))
    if res.log_collector:
        urls.append(("journal collector", res.log_collector))
    return urls


def _stood_up(site: SiteConfig, purpose: str) -> tuple[bool, str]:
    """Whether something in the rehearsal uses the service, and if not, why it is only named."""
    hosts_mode = site.platform.mode == "hosts"
    if purpose == "mirror" or purpose.startswith("vendor repository"):
        return True, ""
    if purpose == "model store":
        if not hosts_mode:
            return False, "kubernetes mode's chart fetches the weights; no cluster runs here"
        if not site.residency.model_store.startswith("https://"):
            return False, "hosts mode reads weights from folders or https stores only"
        return True, ""
    if purpose == "container registry":
        return False, ("images are pulled by Kubernetes, which does not run here" if not hosts_mode else
                       "hosts mode pulls no image")
    if purpose == "state backend":
        return False, "Pulumi's state: the rehearsal runs the converge `pulumi up` runs, not the Pulumi engine"
    if purpose == "journal collector":
        return False, "no stand-in collector yet; the hosts' journal-upload is configured and left waiting"
    if purpose.startswith("alert receiver") or purpose == MAIL_RELAY:
        return True, ""
    return False, "nothing here uses it"


def substitutions(site: SiteConfig, hosts: Iterable[Machine] = ()) -> list[Substitution]:
    """What the rehearsal replaces, each with its reason (printed, and written in the rehearsal's record)."""
    machines = list(hosts)
    containers = [m.name for m in machines if not m.vm] if machines else [n.name for n in site.nodes]
    vms = [m.name for m in machines if m.vm]
    out = []
    if containers:
        out.append(Substitution("hosts", "the site's servers" if not vms else ", ".join(containers),
                                "podman hosts with systemd on this machine", "a rehearsal before hardware"))
    if vms:
        out.append(Substitution(
            "hosts on virtual machines", ", ".join(vms), "Debian 12 VMs under qemu, software emulation, with "
            f"{', '.join(SEPARATE_FILE_SYSTEMS)} as file systems of their own and the data folders on a LUKS volume",
            "their own kernel: auditd, sysctls, modules, chrony, mounts and encryption at rest are proven live; the "
            "rehearsal lays the disks out as the site's installer and operator would"))
    vendor = site.accelerator.accelerator
    if site.infrastructure.provider == "openstack":
        out.append(Substitution("servers", f"OpenStack servers in {site.infrastructure.openstack_region}",
                                "rehearsal hosts, addresses from the site's networks",
                                "no cloud here; cloud-init's login user and key are set up as it would"))
        if containers:
            out.append(Substitution("data volumes",
                                    f"Cinder volumes of type {site.infrastructure.openstack_volume_type}",
                                    f"the host's own disk on {', '.join(containers)}",
                                    "containers have no block devices of their own"))
    if site.residency.encryption_at_rest_required and containers:
        out.append(Substitution("encryption at rest", "required: data folders on LUKS/dm-crypt volumes",
                                f"not required of the podman hosts' own disks ({', '.join(containers)})",
                                "a container has no block device of its own; the check stays in the report as "
                                "skipped, with that reason"))
    if site.platform.mode == "kubernetes":
        out.append(Substitution("Kubernetes", f"RKE2 {site.platform.rke2_version}", "not installed",
                                "no Kubernetes API server can run here; the node firewall is probed between nodes"))
        if site.platform.kubeconfig is None:
            out.append(Substitution("RKE2 artifacts", "the release's tarball and images from the in-country mirror, "
                                    "verified against the pinned checksum file", "not fetched; the rke2 role checks "
                                    "its inputs and writes its configuration files, the CIS prerequisites and the "
                                    "cluster token, and stops there", "the stand-in mirror does not carry RKE2's "
                                    "release (tests/roles/test_rke2_role.py proves the verification on a test-made "
                                    "set)"))
            if site.platform.etcd_snapshot_credentials is not None:
                out.append(Substitution("etcd snapshot credentials", "the state store's access key id and secret "
                                        "(etcdSnapshotCredentials: the site's Pulumi secrets or files)",
                                        "credentials made for the rehearsal, written to the servers' "
                                        "/etc/default/rke2-server as on the site", "the site's secrets are not on "
                                        "this machine; no RKE2 starts, so no snapshot is taken or uploaded"))
            if vendor != "cpu":
                out.append(Substitution("GPU driver", f"the {vendor} driver on the cluster's GPU nodes",
                                        "not installed", "no accelerator here"))
    elif vendor != "cpu":
        out.append(Substitution("model servers", f"vLLM on {vendor} accelerators",
                                "vLLM's CPU engine with tiny stand-in models under the site's served names",
                                f"no accelerator here; `sovkit bundle` assembles the {vendor} runtime, which the "
                                "rehearsal does not install"))
        if vendor_data(vendor).hosts_metrics_exporter:
            out.append(Substitution("GPU metrics", f"sovkit's {vendor} GPU exporter on each GPU host, scraped by "
                                    "Prometheus", "not started, and no GPU scrape job",
                                    "it reads the GPUs through the driver, which no host here has; its series are "
                                    "checked against recorded readings by promtool in the unit tests"))
    if site.platform.mode == "hosts":
        names = ", ".join(site.serving.models)
        out.append(Substitution("model weights", names, "a tiny model made offline, under each served name",
                                "the site's weights are not on this machine; the answers are noise by design"))
    if not site.residency.apt_mirror.startswith("file:"):
        out.append(Substitution("package mirror signature", site.residency.apt_mirror_key or "Debian's archive key",
                                "a rehearsal archive key", "the stand-in mirror serves the bundle's packages and "
                                "signs its own indexes"))
    for name, repository in sorted(site.residency.apt_repositories.items()):
        if not repository.url.startswith("file:"):
            out.append(Substitution(f"vendor repository {name}", f"{repository.url}, the site's mirror",
                                    "an empty repository at that URL, signed by the rehearsal archive key",
                                    "the vendor's packages are not reachable here: the hosts read and verify the "
                                    "source as the site's hosts would, and install nothing from it"))
    https = [u for purpose, u in _service_urls(site) if u.startswith("https://") and _stood_up(site, purpose)[0]]
    if site.residency.trusted_ca_files or https:
        out.append(Substitution("in-country PKI", ", ".join(site.residency.trusted_ca_files) or "the site's CAs",
                                "a rehearsal CA", "it signs the stand-in services' certificates"))
    return out
