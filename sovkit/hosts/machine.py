"""Settings of the machine running the hosts that podman changes, captured and put back.

podman's networking turns ``net.ipv4.ip_forward`` (and IPv6 forwarding) on and leaves netavark's
firewall tables behind. A CI runner or an operator's laptop must look the same afterwards, so
:class:`MachineSnapshot` records them before any host starts and :meth:`MachineSnapshot.restore`
puts them back.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sovkit.hosts._run import log, run

SYSCTLS = (
    # what podman's networking turns on
    "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.ipv6.conf.default.forwarding",
    # not namespaced: a host's boot (systemd-sysctl) or a hardening role run in a container with
    # /proc/sys unmasked could write them on this machine; the roles gate them, this proves it
    "kernel.randomize_va_space", "kernel.yama.ptrace_scope", "kernel.dmesg_restrict", "kernel.kptr_restrict",
    "kernel.sysrq", "kernel.core_pattern", "kernel.pid_max", "fs.suid_dumpable", "fs.protected_hardlinks",
    "fs.protected_symlinks", "fs.protected_fifos", "fs.protected_regular", "net.core.default_qdisc",
)


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctl(name: str) -> str | None:
    path = _sysctl_path(name)
    return path.read_text().strip() if path.exists() else None


def nft_tables() -> set[str]:
    """Tables as "family name" strings; empty when nft is missing."""
    if not shutil.which("nft"):
        return set()
    proc = run(["nft", "list", "tables"], check=False)
    return {line.removeprefix("table ").strip() for line in proc.stdout.splitlines() if line.startswith("table ")}


def _is_podmans(table: str) -> bool:
    """Tables that netavark (directly or through iptables-nft) creates."""
    family, _, name = table.partition(" ")
    if "netavark" in name.lower():
        return True
    # iptables-nft tables; only touched when netavark's chains are what they hold.
    if family in ("ip", "ip6") and name in ("filter", "nat", "mangle"):
        listing = run(["nft", "list", "table", family, name], check=False).stdout
        return "NETAVARK" in listing or all("chain" not in line or "{" in line for line in listing.splitlines())
    return False


def podman_objects(kind: str) -> set[str]:
    """Names of every podman ``kind`` ("container", all states, or "network"); empty without podman.

    All of them, not only those sovkit labels: Molecule's containers carry no sovkit label, and a lab
    holds the machine-wide lock, so whatever appears while it lives was started under it.
    """
    if not shutil.which("podman"):
        return set()
    if kind == "container":
        argv = ["podman", "container", "ls", "--all", "--format", "{{.Names}}"]
    else:
        argv = ["podman", "network", "ls", "--format", "{{.Name}}"]
    return set(run(argv, check=False).stdout.split())


@dataclass
class MachineSnapshot:
    sysctls: dict[str, str | None] = field(default_factory=dict)
    tables: set[str] = field(default_factory=set)
    containers: set[str] = field(default_factory=set)
    networks: set[str] = field(default_factory=set)

    @classmethod
    def capture(cls) -> MachineSnapshot:
        return cls({name: read_sysctl(name) for name in SYSCTLS}, nft_tables(), podman_objects("container"),
                   podman_objects("network"))

    @classmethod
    def save_once(cls, path: Path) -> None:
        """Capture the machine into `path` unless a snapshot is kept there already (the first is what `down`
        restores; a re-run reads nothing of the machine)."""
        if path.exists():
            return
        snap = cls.capture()
        data = {"sysctls": snap.sysctls, "tables": sorted(snap.tables), "containers": sorted(snap.containers),
                "networks": sorted(snap.networks)}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> MachineSnapshot | None:
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(data["sysctls"], set(data["tables"]), set(data["containers"]), set(data["networks"]))

    def changes(self) -> list[str]:
        """What differs now from the snapshot, one line each (empty when restored)."""
        now = MachineSnapshot.capture()
        out = [f"{k}: {v} -> {now.sysctls.get(k)}" for k, v in self.sysctls.items() if now.sysctls.get(k) != v]
        out += [f"nft table added: {t}" for t in sorted(now.tables - self.tables)]
        out += [f"podman container left: {c}" for c in sorted(now.containers - self.containers)]
        out += [f"podman network left: {n}" for n in sorted(now.networks - self.networks)]
        return out

    def restore(self) -> list[str]:
        """Put back the sysctls and remove podman's new nft tables; returns what was done."""
        done = []
        for name, value in self.sysctls.items():
            if value is not None and read_sysctl(name) != value:
                _sysctl_path(name).write_text(value + "\n")
                done.append(f"{name}={value}")
        for table in sorted(nft_tables() - self.tables):
            if _is_podmans(table):
                family, _, name = table.partition(" ")
                run(["nft", "delete", "table", family, name], check=False)
                done.append(f"deleted nft table {table}")
        if done:
            log.info("restored machine settings: %s", "; ".join(done))
        return done
