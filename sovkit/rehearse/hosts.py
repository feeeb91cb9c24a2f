"""The site's own hosts in a rehearsal: podman hosts with systemd in the site's lab, each with its name, address,
login user and SSH port, reached over SSH with a key the rehearsal makes, exactly as Ansible reaches a real site.

What a real server has before sovkit touches it, the rehearsal gives each host when it starts: the login user the
stack names (with passwordless sudo, as a cloud image's user or an operator's admin account has) holding the
rehearsal's public key, and sshd on the site's port.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sovkit.hosts import HostsError, HostSpec, Podman
from sovkit.hosts.netlab import NetLab
from sovkit.rehearse.plan import Machine, RehearsalPlan
from sovkit.workspace import HOST_BUNDLE_DIR

SITE_LABEL = "io.sovkit.rehearsal"  # every container of a rehearsal carries the site's name under it
# Run as root in a fresh host: the login user, its key and sudo, and sshd on the site's port.
PREPARE_LOGIN = r"""
set -eu
user=$1 port=$2 key=$3
# localhost and the host's own name resolve, as Debian's installer writes /etc/hosts (sudo looks the name up)
grep -qw localhost /etc/hosts 2>/dev/null || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n' >> /etc/hosts
grep -qw "$(hostname)" /etc/hosts || printf '127.0.1.1\t%s\n' "$(hostname)" >> /etc/hosts
if [ "$user" != root ]; then
  id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
  printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$user" > /etc/sudoers.d/90-site-login
  chmod 0440 /etc/sudoers.d/90-site-login
fi
home=$(getent passwd "$user" | cut -d: -f6)
group=$(id -gn "$user")
install -d -m 0700 -o "$user" -g "$group" "$home/.ssh"
printf '%s\n' "$key" > "$home/.ssh/authorized_keys"
chown "$user:$group" "$home/.ssh/authorized_keys"
chmod 0600 "$home/.ssh/authorized_keys"
sed -i -E "s/^#?Port .*/Port $port/" /etc/ssh/sshd_config
systemctl restart ssh
"""


@dataclass(frozen=True)
class SshAccess:
    """The rehearsal's key and the ssh configuration Ansible and `sovkit verify` use with it."""

    folder: Path

    @property
    def private_key(self) -> Path:
        return self.folder / "id_ed25519"

    @property
    def public_key(self) -> str:
        return self.private_key.with_suffix(".pub").read_text().strip()

    @property
    def config(self) -> Path:
        return self.folder / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    def ensure(self) -> SshAccess:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.private_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sovkit rehearsal",
                            "-f", str(self.private_key)], check=True, capture_output=True, timeout=30)
        self.config.write_text(
            "# The rehearsal's own access to its hosts (sovkit rehearse); a real site uses the operators' keys.\n"
            "Host *\n"
            f"  IdentityFile {self.private_key}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n"
            "  StrictHostKeyChecking accept-new\n"
            "  ConnectTimeout 10\n")
        return self

    def log_in(self, lab: NetLab, machine: Machine) -> None:
        """Log in once as the play will, which records the host's key on first use (a strategy that runs its own
        ssh, as mitogen's, checks keys strictly) and shows the login works before any play starts."""
        proc = subprocess.run(lab.argv(["ssh", "-F", str(self.config), "-p", str(machine.ssh_port),
                                        f"{machine.ssh_user}@{machine.address}", "true"]),
                              capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise HostsError(f"cannot log in to {machine.name} as {machine.ssh_user} on {machine.address}:"
                             f"{machine.ssh_port}: {proc.stderr.strip()[-500:]}")

    def forget(self, address: str, port: int) -> None:
        """A host made anew has new host keys: forget its old ones."""
        if self.known_hosts.exists():
            for name in (address, f"[{address}]:{port}"):
                subprocess.run(["ssh-keygen", "-q", "-R", name, "-f", str(self.known_hosts)], capture_output=True,
                               check=False, timeout=30)


def container_name(site: str, machine: str) -> str:
    """Containers of different sites never share a name, whatever their hosts are called."""
    return f"{site}.{machine}"


def start_host(podman: Podman, lab: NetLab, plan: RehearsalPlan, machine: Machine, image: str, access: SshAccess,
               bundle: Path | None) -> bool:
    """One host, booted with its login ready; a host already running is left alone. Returns whether it started."""
    name = container_name(plan.site.name, machine.name)
    if podman.container_running(name):
        return False
    netns = lab.attach(machine.name, list(machine.addresses))
    volumes = (f"{bundle}:{HOST_BUNDLE_DIR}:ro",) if bundle else ()
    podman.start_host(HostSpec(name, image, volumes=volumes, hostname=machine.name, netns=netns,
                               dns=plan.resolvers[:3], labels={SITE_LABEL: plan.site.name}))
    podman("exec", name, "sh", "-c", PREPARE_LOGIN, "prepare-login", machine.ssh_user, str(machine.ssh_port),
           access.public_key)
    access.forget(machine.address, machine.ssh_port)
    return True


def start_hosts(podman: Podman, lab: NetLab, plan: RehearsalPlan, image: str, access: SshAccess,
                bundle: Path | None, progress: Callable[[str], None]) -> list[str]:
    """Every podman host of the plan (its VMs are sovkit.rehearse.vms'), in parallel; returns those started now."""
    containers = [m for m in plan.hosts if not m.vm]

    def one(machine: Machine) -> str | None:
        started = start_host(podman, lab, plan, machine, image, access, bundle)
        if started:
            progress(f"started host {machine.name} ({machine.role}, {machine.address}, "
                     f"{machine.ssh_user}@:{machine.ssh_port})")
        return machine.name if started else None

    with ThreadPoolExecutor(max_workers=max(1, min(6, len(containers)))) as pool:
        started = [n for n in pool.map(one, containers) if n]
    for machine in plan.hosts:
        wait_for_ssh(lab, machine.name, machine.address, machine.ssh_port)
        access.log_in(lab, machine)
    return started


def wait_for_ssh(lab: NetLab, name: str, address: str, port: int, wait_s: float = 60) -> None:
    """Until the sshd of machine `name` answers on `address`:`port`, from the admin machine's side of the lab."""
    probe = ("import socket,sys\n"
             "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),3)\n"
             "sys.exit(0 if s.recv(8).startswith(b'SSH-') else 1)\n")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        argv = lab.argv(["python3", "-c", probe, address, str(port)])
        if subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise HostsError(f"sshd of {name} did not answer on {address}:{port} within {wait_s:.0f} s")
