"""One site machine on a Debian 12 virtual machine with its own kernel, hardened by the kit's playbook over SSH.

The site is the `local` stack made an on-prem site of one host (vm-01 at 198.18.0.10, logged into as the admin
account `sovkit-admin`, encryption at rest required): its inventory is what `sovkit inventory` renders. The VM
sits in a lab of its own (network namespaces, no way out) with the stack's in-country resolver and NTP server
stood up by the rehearsal's stand-ins, and sees the local apt repository read-only at the stack's mirror path.
Before the kit runs, the operator's part is done as on a real server, exactly as `sovkit rehearse --vm` does it
(sovkit.rehearse.vms): separate file systems for /var, /var/tmp, /var/log, /var/log/audit and /home (as an
installer following CIS lays them out), the data disk made a LUKS volume holding the data folders, and the login
account with the key. Everything goes at the end; the machine is as it was.
"""

from __future__ import annotations

import contextlib
import os
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
from sovkit.converge import PlayRun, mitogen_strategy
from sovkit.hosts import HostsError, LabLock, MachineSnapshot, Podman, default_cache_dir, ensure_apt_repo
from sovkit.hosts.netlab import NetLab
from sovkit.hosts.vm import VirtualMachine, build_vm_image
from sovkit.rehearse import vms
from sovkit.rehearse.hosts import SshAccess
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
DATA_MOUNT = vms.DATA_MOUNT  # the LUKS volume; the data folders are bind mounts of folders on it


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
        return vms.root_argv(self.lab, self.access, ADMIN, ADDRESS, 22, list(remote))

    def ssh(self, command: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        """Shell `command` as root on the VM; fails the test, saying why, unless it succeeds or `check` is off."""
        proc = subprocess.run(self.as_root("sh", "-c", command), capture_output=True, text=True,
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
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "true",
            "ANSIBLE_SSH_COMMON_ARGS": f"-F {access.config}", **mitogen_strategy()}


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
        try:
            vm = vms.boot(lab, HOST, [f"{ADDRESS}/24"], access, workdir / HOST, shares={mirror: repo.path},
                          image=image)
        except HostsError as err:
            raise AssertionError(str(err)) from err
        vms.prepare_as_operator(lab, access, ADDRESS, ADMIN, 22, inventory["all"]["vars"]["data_at_rest_paths"],
                                [dns])
        assert subprocess.run(vms.root_argv(lab, access, ADMIN, ADDRESS, 22, ["test", "-d", mirror]),
                              capture_output=True, timeout=60, check=False).returncode == 0, f"no {mirror} on the VM"
        yield VmSite(lab, vm, access, inventory, workdir)
    finally:
        if vm:
            vm.stop()
        stop_stand_ins(podman, spec)
        lab.destroy()
        snapshot.restore()
        if not held_here:
            lock.release()
