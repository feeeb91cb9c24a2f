"""podman with systemd hosts: the containers.conf fixes, internal networks, host start/stop.

Debian 12's podman 4.3 runs containers with systemd as PID 1 only with two fixes, written here to a
containers.conf that every podman call of this module (and of Molecule, through :meth:`Podman.env`)
points ``CONTAINERS_CONF`` at:

- ``runtime = "runc"``: crun 1.8 fails with "cgroups in hybrid mode not supported";
- ``default_ulimits``: a VM without CAP_SYS_RESOURCE can only lower rlimits.
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sovkit.hosts._run import HostsError, log, run

CONTAINERS_CONF = """\
# Written by sovkit.hosts: podman settings for systemd test hosts on Debian 12.
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=32768:32768"]

[engine]
runtime = "runc"
"""

LABEL = "io.sovkit.host"  # every container/network this module creates carries it


@dataclass(frozen=True)
class NetworkSpec:
    """An internal podman network: a bridge without NAT or any route out of this machine."""

    name: str
    subnet: str  # e.g. "198.51.100.0/24" (a documentation range in tests)

    def __post_init__(self) -> None:
        ipaddress.ip_network(self.subnet)  # raises ValueError on nonsense


@dataclass(frozen=True)
class Attachment:
    network: str
    ip: str


@dataclass(frozen=True)
class HostSpec:
    """One systemd host: a container booting /sbin/init from the sovkit host image."""

    name: str
    image: str
    attachments: tuple[Attachment, ...] = ()
    volumes: tuple[str, ...] = ()  # podman -v syntax, e.g. "/cache/apt:/srv/sovkit-apt:ro"
    hostname: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # A server's /dev/shm is half its memory; podman's 64 MiB default is too small for vLLM's engine queues.
    shm_size: str = "1g"
    # A network namespace made beforehand (a rehearsal's NetLab) instead of podman networks; then the host's
    # resolvers are the site's, and /etc/hosts is the image's own (podman's would name this machine's address).
    netns: Path | None = None
    dns: tuple[str, ...] = ()

    def run_args(self) -> list[str]:
        args = [
            "--detach", "--name", self.name, "--hostname", self.hostname or self.name,
            "--label", f"{LABEL}=1",
            "--systemd=always",
            "--shm-size", self.shm_size,
            # nftables and net.* sysctls inside the host's own network namespace
            "--cap-add", "NET_ADMIN",
            "--security-opt", "unmask=/proc/sys",
        ]
        for key, value in self.labels.items():
            args += ["--label", f"{key}={value}"]
        if self.netns:
            args += ["--network", f"ns:{self.netns}", "--no-hosts", *(f"--dns={d}" for d in self.dns)]
        elif self.attachments:
            for att in self.attachments:
                args += ["--network", f"{att.network}:ip={att.ip}"]
        else:
            args += ["--network", "none"]
        for vol in self.volumes:
            args += ["--volume", vol]
        return [*args, self.image, "/sbin/init"]


class Podman:
    """podman as root, configured for systemd hosts. ``state_dir`` holds the containers.conf."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.state_dir / "containers.conf"
        if not self.conf.exists() or self.conf.read_text() != CONTAINERS_CONF:
            self.conf.write_text(CONTAINERS_CONF)

    # -- plumbing ------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """Environment for any process that runs podman (Molecule, testinfra's podman:// backend)."""
        return {**os.environ, "CONTAINERS_CONF": str(self.conf)}

    def __call__(self, *args: str, check: bool = True, timeout: float | None = 300) -> str:
        return run(["podman", *args], env=self.env(), check=check, timeout=timeout).stdout

    # -- images --------------------------------------------------------------------------------
    def image_exists(self, tag: str) -> bool:
        return run(["podman", "image", "exists", tag], env=self.env(), check=False).returncode == 0

    def import_image(self, tarball: Path, tag: str) -> str:
        """Import a rootfs tarball as an image that boots systemd; a no-op if ``tag`` exists."""
        if not self.image_exists(tag):
            started = time.monotonic()
            self("import", "--change", 'CMD ["/sbin/init"]', "--change", "STOPSIGNAL SIGRTMIN+3",
                 str(tarball), tag, timeout=600)
            log.info("imported %s in %.1f s", tag, time.monotonic() - started)
        return tag

    # -- networks ------------------------------------------------------------------------------
    def network_exists(self, name: str) -> bool:
        return run(["podman", "network", "exists", name], env=self.env(), check=False).returncode == 0

    def create_network(self, spec: NetworkSpec) -> None:
        """Create ``spec`` as an --internal network (idempotent; a differing subnet is an error)."""
        if self.network_exists(spec.name):
            info = json.loads(self("network", "inspect", spec.name))[0]
            subnets = [s.get("subnet") for s in info.get("subnets", [])]
            if spec.subnet not in subnets:
                raise HostsError(f"podman network {spec.name} exists with subnets {subnets}, not {spec.subnet}")
            return
        self("network", "create", "--internal", "--label", f"{LABEL}=1",
             "--subnet", spec.subnet, spec.name)

    def remove_network(self, name: str) -> None:
        if self.network_exists(name):
            self("network", "rm", "--force", name)

    # -- hosts ---------------------------------------------------------------------------------
    def container_exists(self, name: str) -> bool:
        return run(["podman", "container", "exists", name], env=self.env(), check=False).returncode == 0

    def container_running(self, name: str) -> bool:
        return self.container_exists(name) and \
            self("container", "inspect", "--format", "{{.State.Running}}", name).strip() == "true"

    def start_host(self, spec: HostSpec, wait_s: float = 60) -> None:
        """Start ``spec`` and wait until systemd reports the boot finished (running/degraded)."""
        if self.container_exists(spec.name):
            self("rm", "--force", spec.name)
        self("run", *spec.run_args())
        self.wait_booted(spec.name, wait_s)

    def wait_booted(self, name: str, wait_s: float = 60) -> str:
        deadline = time.monotonic() + wait_s
        state = ""
        while time.monotonic() < deadline:
            proc = run(["podman", "exec", name, "systemctl", "is-system-running"], env=self.env(), check=False)
            state = proc.stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.3)
        raise HostsError(f"host {name} did not finish booting in {wait_s:.0f} s (systemd state: {state!r})")

    def stop_host(self, name: str) -> None:
        if self.container_exists(name):
            self("rm", "--force", "--time", "5", name)

    def exec(self, name: str, argv: Sequence[str], check: bool = True) -> str:
        return run(["podman", "exec", name, *argv], env=self.env(), check=check).stdout
