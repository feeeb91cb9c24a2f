"""One site machine on a Debian 12 virtual machine with its own kernel, hardened by the kit's playbook over SSH.

The site is the `local` stack made an on-prem site of one host (vm-01 at 198.18.0.10, logged into as the admin
account `sovkit-admin`, encryption at rest required): its inventory is what `sovkit inventory` renders. The VM
sits in a lab of its own (network namespaces, no way out) with the stack's in-country resolver and NTP server
stood up by the rehearsal's stand-ins, and sees the local apt repository read-only at the stack's mirror path.
Before the kit runs, the operator's part is done as on a real server: separate file systems for /var, /var/tmp,
/var/log, /var/log/audit and /home (as an installer following CIS lays them out), the login account with the key,
and the data disk made a LUKS volume holding the data folders. Everything goes at the end; the machine is as it was.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sovkit.compliance.conftest import role_defaults
from sovkit.config import load_stack
from sovkit.converge import PlayRun
from sovkit.hosts import HostsError, LabLock, MachineSnapshot, Podman, default_cache_dir, ensure_apt_repo
from sovkit.hosts.netlab import NetLab
from sovkit.hosts.vm import VirtualMachine, build_vm_image
from sovkit.rehearse.hosts import PREPARE_LOGIN, SshAccess, wait_for_ssh
from sovkit.rehearse.services import StandIns, ensure_services_image, start_stand_ins, stop_stand_ins
from sovkit.render.inventory import render_inventory
from sovkit.verify.report import Report
from sovkit.verify.runner import run_verify

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SITE = "vmlab"
HOST = "vm-01"
ADDRESS = "198.18.0.10"
ADMIN = "sovkit-admin"
CONTROLLER = ["198.18.0.1/24"]
LUKS_NAME = "sovkit-data"
DATA_MOUNT = "/srv/data"  # the LUKS volume; the data folders are bind mounts of folders on it
# The operator's installer laid the system out as CIS asks (Level 2, 1.1.2.x.1): these folders are file systems of
# their own, one disk each after the data disk (/dev/vdd, ...), mounted by label.
SEPARATE = {"/var": 2, "/var/tmp": 1, "/var/log": 1, "/var/log/audit": 1, "/home": 1}  # path: GiB


def vm_stack(workdir: Path) -> Path:
    """The local stack as an on-prem site of one VM (see the module's docstring), written under workdir."""
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())
    config = doc["config"]
    for key in ("localNodes", "localNetworkCidr"):
        del config[f"sovereign-ai:{key}"]
    config.update({"sovereign-ai:siteName": SITE, "sovereign-ai:provider": "onprem",
                   "sovereign-ai:encryptionAtRestRequired": True,
                   "sovereign-ai:hosts": {HOST: {"address": ADDRESS, "role": "cpu_worker", "sshUser": ADMIN}}})
    for model in config["sovereign-ai:models"].values():
        model["replicas"] = 1
    path = workdir / f"Pulumi.{SITE}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class VmSite:
    lab: NetLab
    vm: VirtualMachine
    access: SshAccess
    inventory: dict[str, Any]
    workdir: Path

    @property
    def vars(self) -> dict[str, Any]:
        """What the play gives the VM: the roles' defaults, under the stack's rendered values (as the suite reads)."""
        return {**role_defaults(), **self.inventory["all"]["vars"],
                **self.inventory["all"]["children"]["cpu_worker"]["hosts"][HOST]}

    def as_root(self, *remote: str) -> list[str]:
        """The command line running `remote` as root on the VM (the admin account's sudo), from the controller."""
        return self.lab.argv(["ssh", "-F", str(self.access.config), "-p", "22", f"{ADMIN}@{ADDRESS}", "sudo", *remote])

    def ssh(self, command: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        """Shell `command` as root on the VM; fails the test, saying why, unless it succeeds or `check` is off."""
        proc = subprocess.run(self.as_root("sh", "-c", shlex.quote(command)), capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"`{command}` on {HOST} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
        return proc

    def converge(self, *extra: str) -> PlayRun:
        """playbooks/harden.yml on the VM, as the site's admin machine runs it."""
        inv_file = self.workdir / "inventory.yml"
        inv_file.write_text(yaml.safe_dump(self.inventory, sort_keys=True))
        started = time.monotonic()
        proc = subprocess.run(
            self.lab.argv([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv_file),
                           str(ROOT / "playbooks" / "harden.yml"), *extra]),
            cwd=ROOT, env=ansible_env(self.access), capture_output=True, text=True, check=False, timeout=1800)
        run = PlayRun(proc.returncode, time.monotonic() - started, proc.stdout + proc.stderr)
        (self.workdir / f"converge-{int(time.time())}.log").write_text(run.output)
        return run

    def verify(self, *pytest_args: str) -> Report:
        """`sovkit verify` of the VM (the compliance suite over SSH), from the lab's controller."""
        return run_verify(self.inventory, self.workdir / "compliance", jobs=1,
                          env={"SOVKIT_SSH_CONFIG": str(self.access.config)}, wrap=self.lab.argv,
                          extra_pytest_args=list(pytest_args))


def ansible_env(access: SshAccess) -> dict[str, str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
           "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "true",
           "ANSIBLE_SSH_COMMON_ARGS": f"-F {access.config}"}
    try:  # mitogen: one Python on the VM for the whole play, ten times faster under emulation than a module each
        import ansible_mitogen
    except ImportError:
        return env
    env.update({"ANSIBLE_STRATEGY_PLUGINS": str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"),
                "ANSIBLE_STRATEGY": "mitogen_linear"})
    return env


def prepare_as_operator(lab: NetLab, access: SshAccess, mirror: str, folders: dict[str, str]) -> None:
    """What the operator does before the kit runs (as root, with the key the VM's seed gave root): the SEPARATE
    file systems, each holding a copy of what was there and mounted by label from fstab as an installer leaves
    them; the admin account with the key; and the data disk made a LUKS volume holding the data `folders`
    ({name: path}: the model store and the logs, as the stack renders them). PBKDF2 at a low cost: the key file is
    the secret, and emulated Argon2 takes minutes."""
    def as_root(*argv: str) -> None:
        proc = subprocess.run(lab.argv(["ssh", "-F", str(access.config), f"root@{ADDRESS}", *argv]),
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, f"{argv[-1][:200]} exited {proc.returncode}: {proc.stderr[-2000:]}"

    layout = "".join(
        f"mkdir -p {path}; mkfs.ext4 -q -L sv{n} /dev/vd{chr(ord('d') + n)}; mount LABEL=sv{n} /mnt; "
        f"cp -a {path}/. /mnt/; umount /mnt; echo 'LABEL=sv{n} {path} ext4 defaults 0 2' >> /etc/fstab; "
        f"mount {path}; " for n, path in enumerate(SEPARATE))
    # journald still writes to the /var/log the new one now hides: it starts again on the new one
    as_root("sh", "-c", shlex.quote(f"set -eu; {layout} systemctl restart systemd-journald"))
    as_root("sh", "-c", shlex.quote(PREPARE_LOGIN), "prepare-login", ADMIN, "22", shlex.quote(access.public_key))
    binds = " ".join(f"mkdir -p {DATA_MOUNT}/{name} {path} && mount --bind {DATA_MOUNT}/{name} {path};"
                     for name, path in folders.items())
    as_root("sh", "-c", shlex.quote(
        "set -eu; head -c 64 /dev/urandom > /root/data.key; chmod 0400 /root/data.key; "
        "cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "
        f"--key-file /root/data.key /dev/vdc; cryptsetup open --key-file /root/data.key /dev/vdc {LUKS_NAME}; "
        f"mkfs.ext4 -q /dev/mapper/{LUKS_NAME}; mkdir -p {DATA_MOUNT}; mount /dev/mapper/{LUKS_NAME} {DATA_MOUNT}; "
        f"{binds} test -d {mirror}"))


@contextlib.contextmanager
def vm_lab(workdir: Path) -> Iterator[VmSite]:
    """The site of this module, booted and prepared by the operator, in `workdir`; all of it goes at the end and
    the machine is as it was. Holds the machine's lab lock (unless this process already does)."""
    workdir.mkdir(parents=True, exist_ok=True)
    site = load_stack(vm_stack(workdir))
    inventory = render_inventory(site)
    mirror = "/" + site.residency.apt_mirror.removeprefix("file:").lstrip("/")
    podman = Podman(default_cache_dir() / "podman")
    image = build_vm_image()
    repo = ensure_apt_repo(image.rootfs)
    services_image = ensure_services_image(podman)
    access = SshAccess(workdir / "ssh").ensure()
    lab = NetLab(SITE, ["198.18.0.0/24", "198.51.100.0/24"])
    ntp, dns = site.residency.ntp_servers[0], site.residency.dns_resolvers[0]
    spec = StandIns(name=f"{SITE}-services", lab=lab, addresses=(f"{ntp}/24", f"{dns}/24"),
                    workdir=workdir / "services", dns_listen=(dns,), ntp_listen=(ntp,),
                    dns_records={f"{HOST}.{site.residency.in_country_domains[0]}": (ADDRESS,)})
    lock = LabLock()
    held_here = lock.path.exists() and lock.path.read_text().strip() == f"pid {os.getpid()}"
    if not held_here:
        lock.acquire()
    snapshot = MachineSnapshot.capture()
    vm = None
    try:
        podman.stop_host(spec.name)
        lab.destroy()
        lab.create(controller=CONTROLLER, resolvers=[dns])
        start_stand_ins(podman, spec, services_image)
        vm = VirtualMachine.boot(lab, HOST, [f"{ADDRESS}/24"], access.public_key, workdir / HOST,
                                 shares={mirror: repo.path}, disks_gib=[2, *SEPARATE.values()],
                                 image=image)
        try:
            wait_for_ssh(lab, HOST, ADDRESS, 22, 240)
        except HostsError as err:
            raise AssertionError(f"{err} (its console: {vm.console_log})") from err
        prepare_as_operator(lab, access, mirror, inventory["all"]["vars"]["data_at_rest_paths"])
        yield VmSite(lab, vm, access, inventory, workdir)
    finally:
        if vm:
            vm.stop()
        stop_stand_ins(podman, spec)
        lab.destroy()
        snapshot.restore()
        if not held_here:
            lock.release()
