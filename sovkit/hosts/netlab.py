"""A site's networks inside network namespaces of this machine: nothing collides with the machine's own networks,
and nothing has a way out.

A site's addresses are its own (a ministry's 192.0.2.0/24 may be this machine's own LAN), so a rehearsal never
puts them on this machine's network stack. The lab is one namespace holding one bridge that carries every network
of the site; the lab namespace also holds the addresses of the site's admin machine (the controller), from which
Ansible and `sovkit verify` run (`NetLab.argv`). Every machine of the site (a podman host, the stand-in services)
gets a namespace of its own, wired to the bridge by a veth pair, with its addresses and an on-link route to each of
the site's networks, and podman runs it with `--network ns:<path>`. There is no route out of the lab: no uplink,
no NAT, no forwarding in this machine's own namespace.

    lab = NetLab("br-ministerio-cpu", site_cidrs=["192.0.2.0/24", "2001:db8:55::/48"])
    lab.create(controller=["192.0.2.1/24"])
    path = lab.attach("bsb-cpu-01", ["192.0.2.21/24"])       # podman run --network ns:<path> ...
    subprocess.run(lab.argv(["ssh", "ansible@192.0.2.21"]))  # as the site's admin machine
    lab.destroy()
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from sovkit.hosts._run import HostsError, run

NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")  # `ip netns exec` binds /etc/netns/<ns>/resolv.conf over /etc/resolv.conf
PREFIX = "sovkit-lab-"
BRIDGE = "br0"
GUEST_IFACE = "eth0"


def _ip(*args: str) -> str:
    return run(["ip", *args], timeout=30).stdout


@dataclass(frozen=True)
class NetLab:
    """The lab of one site: its namespace names are derived from the site name, so `destroy` finds them again."""

    site: str
    site_cidrs: tuple[str, ...]

    def __init__(self, site: str, site_cidrs: list[str] | tuple[str, ...]) -> None:
        object.__setattr__(self, "site", site)
        object.__setattr__(self, "site_cidrs", tuple(str(ipaddress.ip_network(c)) for c in site_cidrs))

    # -- names -------------------------------------------------------------------------------------
    @property
    def namespace(self) -> str:
        return f"{PREFIX}{self.site}"

    def machine_namespace(self, machine: str) -> str:
        return f"{PREFIX}{self.site}--{machine}"

    def netns_path(self, machine: str) -> Path:
        return NETNS_DIR / self.machine_namespace(machine)

    def _veth(self, machine: str) -> str:
        """The bridge side of a machine's veth pair: interface names are at most 15 characters."""
        return "v" + hashlib.sha256(machine.encode()).hexdigest()[:12]

    # -- lifecycle ---------------------------------------------------------------------------------
    def exists(self) -> bool:
        return (NETNS_DIR / self.namespace).exists()

    def create(self, controller: list[str], resolvers: list[str] | None = None) -> None:
        """The lab namespace with its bridge and the controller's addresses (CIDR notation); idempotent.
        `resolvers` become the controller's resolv.conf inside the lab."""
        if not self.exists():
            _ip("netns", "add", self.namespace)
        ns = self.namespace
        _ip("-n", ns, "link", "set", "lo", "up")
        if BRIDGE not in _ip("-n", ns, "-o", "link", "show"):
            _ip("-n", ns, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0")
        _ip("-n", ns, "link", "set", BRIDGE, "up")
        self._address(ns, BRIDGE, controller)
        if resolvers is not None:
            folder = ETC_NETNS / ns
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "resolv.conf").write_text("".join(f"nameserver {r}\n" for r in resolvers))

    def attach(self, machine: str, addresses: list[str]) -> Path:
        """A namespace for `machine`, wired to the lab's bridge, holding `addresses` (CIDR notation); idempotent.
        Returns the path podman's `--network ns:` takes."""
        ns = self.machine_namespace(machine)
        if not self.netns_path(machine).exists():
            _ip("netns", "add", ns)
        if GUEST_IFACE not in _ip("-n", ns, "-o", "link", "show"):
            veth = self._veth(machine)
            _ip("-n", self.namespace, "link", "add", veth, "type", "veth", "peer", "name", GUEST_IFACE, "netns", ns)
            _ip("-n", self.namespace, "link", "set", veth, "master", BRIDGE, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "set", GUEST_IFACE, "up")
        self._address(ns, GUEST_IFACE, addresses)
        return self.netns_path(machine)

    def _address(self, ns: str, iface: str, addresses: list[str]) -> None:
        present = _ip("-n", ns, "-o", "addr", "show", "dev", iface)
        for cidr in addresses:
            iface_net = ipaddress.ip_interface(cidr)
            if f" {iface_net.with_prefixlen} " in f" {present} ".replace("\n", " "):
                continue
            extra = ["nodad"] if iface_net.version == 6 else []  # usable at once: no duplicate detection wait
            _ip("-n", ns, "addr", "add", iface_net.with_prefixlen, "dev", iface, *extra)
        # Every network of the site is on-link: one bridge carries them all, so no machine needs a router.
        routes = _ip("-n", ns, "route", "show", "table", "main") + _ip("-n", ns, "-6", "route", "show")
        for cidr in self.site_cidrs:
            if not any(line.split(" ", 1)[0] == cidr for line in routes.splitlines()):
                _ip("-n", ns, "route", "replace", cidr, "dev", iface)

    def detach(self, machine: str) -> None:
        path = self.netns_path(machine)
        if path.exists():
            _ip("netns", "delete", self.machine_namespace(machine))

    def destroy(self) -> list[str]:
        """Every namespace of the lab (machines first) and the controller's resolv.conf; returns what went."""
        gone = []
        for path in sorted(NETNS_DIR.glob(f"{self.namespace}--*")) if NETNS_DIR.exists() else []:
            _ip("netns", "delete", path.name)
            gone.append(f"removed network namespace {path.name}")
        if self.exists():
            _ip("netns", "delete", self.namespace)
            gone.append(f"removed network namespace {self.namespace}")
        resolv = ETC_NETNS / self.namespace
        if resolv.exists():
            for child in resolv.iterdir():
                child.unlink()
            resolv.rmdir()
            gone.append(f"removed {resolv}")
        return gone

    # -- acting as the site's admin machine -------------------------------------------------------
    def argv(self, argv: list[str]) -> list[str]:
        """`argv` run inside the lab, with the controller's addresses and resolvers."""
        if not self.exists():
            raise HostsError(f"the lab of {self.site} does not exist (network namespace {self.namespace})")
        return ["ip", "netns", "exec", self.namespace, *argv]

    def machine_argv(self, machine: str, argv: list[str]) -> list[str]:
        """`argv` run from this machine inside `machine`'s network namespace (probes, load generators)."""
        return ["ip", "netns", "exec", self.machine_namespace(machine), *argv]
