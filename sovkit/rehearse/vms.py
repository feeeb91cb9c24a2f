"""Site hosts on virtual machines (`sovkit rehearse STACK --vm NAME`): a Debian 12 server with its own kernel,
booted with qemu on the site's lab (sovkit.hosts.vm), for what a podman host cannot prove: auditd with its rules in
the kernel, kernel sysctls, modules that cannot load, chrony setting the clock, the data folders on a LUKS volume,
mount options, cgroup v2 enforcing systemd's IP firewall.

Before the kit runs, the rehearsal does what the site's installer and operator do to a real server, as root with
the key the VM's seed gave root: the file systems CIS asks to keep separate (SEPARATE_FILE_SYSTEMS, one disk each,
mounted by label from fstab), the data disk made a LUKS volume holding the site's data folders, then the login the
stack names (user, key, sudo, SSH port), as on a container host. The tests' VM site (tests/vm/vm_lab.py) is
prepared the same way.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from sovkit.hosts import HostsError
from sovkit.hosts.netlab import NetLab
from sovkit.hosts.vm import VirtualMachine, VmImage
from sovkit.rehearse.hosts import PREPARE_LOGIN, SshAccess, wait_for_ssh
from sovkit.rehearse.plan import SEPARATE_FILE_SYSTEMS

DATA_DISK_GIB = 2  # the first blank disk (/dev/vdc); the separate file systems follow it (/dev/vdd, ...)
DATA_VOLUME = "sovkit-data"  # the LUKS mapping's name
DATA_MOUNT = "/srv/data"  # the opened volume; each data folder is a bind mount of a folder on it
MEMORY_MIB = 2048  # a hardened host's services; a model server's host gets SERVING_MEMORY_MIB
SERVING_MEMORY_MIB = 6144
SSH_UP_S = 300  # software emulation, up to a few VMs booting side by side on two cores


def disks_gib() -> list[int]:
    """The blank disks a prepared VM boots with, in order: the data disk, then one per separate file system."""
    return [DATA_DISK_GIB, *SEPARATE_FILE_SYSTEMS.values()]


def separate_file_systems_script() -> str:
    """As root on a fresh VM: each SEPARATE_FILE_SYSTEMS path a file system of its own holding what was there."""
    layout = "".join(
        f"mkdir -p {path}; mkfs.ext4 -q -L sv{n} /dev/vd{chr(ord('d') + n)}; mount LABEL=sv{n} /mnt; "
        f"cp -a {path}/. /mnt/; umount /mnt; echo 'LABEL=sv{n} {path} ext4 defaults 0 2' >> /etc/fstab; "
        f"mount {path}; " for n, path in enumerate(SEPARATE_FILE_SYSTEMS))
    # journald still writes to the /var/log the new one now hides: it starts again on the new one
    return f"set -eu; {layout} systemctl restart systemd-journald"


def data_volume_script(folders: Mapping[str, str]) -> str:
    """As root on a fresh VM: the data disk a LUKS volume, each data folder ({name: path}) on it. PBKDF2 at a low
    cost: the key file is the secret, and Argon2 under emulation takes minutes."""
    binds = " ".join(f"mkdir -p {DATA_MOUNT}/{name} {shlex.quote(path)} && "
                     f"mount --bind {DATA_MOUNT}/{name} {shlex.quote(path)};" for name, path in sorted(folders.items()))
    return ("set -eu; head -c 64 /dev/urandom > /root/data.key; chmod 0400 /root/data.key; "
            "cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "
            f"--key-file /root/data.key /dev/vdc; cryptsetup open --key-file /root/data.key /dev/vdc {DATA_VOLUME}; "
            f"mkfs.ext4 -q /dev/mapper/{DATA_VOLUME}; mkdir -p {DATA_MOUNT}; "
            f"mount /dev/mapper/{DATA_VOLUME} {DATA_MOUNT}; {binds}")


def prepare_as_operator(lab: NetLab, access: SshAccess, address: str, login: str, port: int,
                        data_folders: Mapping[str, str], resolvers: Sequence[str]) -> None:
    """The installer's and operator's part on a freshly booted VM at `address` (root's key, port 22): the site's
    `resolvers` in resolv.conf (the installer asks for them; the first play needs the mirror's name), separate file
    systems, the LUKS data volume holding `data_folders`, then the login (`login`, the access's key, sudo, `port`)."""
    def as_root(script: str, *args: str) -> None:
        argv = lab.argv(["ssh", "-F", str(access.config), "-p", "22", f"root@{address}", "sh", "-c",
                         shlex.quote(script), *(shlex.quote(a) for a in args)])
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise HostsError(f"preparing the VM at {address}: `{script[:120]}...` exited {proc.returncode}: "
                             f"{proc.stderr.strip()[-1500:]}")

    as_root('printf "nameserver %s\\n" "$@" > /etc/resolv.conf', "resolvers", *resolvers[:3])
    as_root(separate_file_systems_script())
    if data_folders:
        as_root(data_volume_script(data_folders))
    as_root(PREPARE_LOGIN, "prepare-login", login, str(port), access.public_key)


def boot(lab: NetLab, name: str, addresses: list[str], access: SshAccess, workdir: Path, *,
         shares: Mapping[str, Path] | None = None, memory_mib: int = MEMORY_MIB,
         image: VmImage | None = None) -> VirtualMachine:
    """A fresh VM with the prepared layout's disks, up and answering SSH as root; stopped again if it does not."""
    vm = VirtualMachine.boot(lab, name, addresses, access.public_key, workdir, shares=dict(shares or {}),
                             disks_gib=disks_gib(), memory_mib=memory_mib, image=image)
    address = addresses[0].split("/")[0]
    try:
        wait_for_ssh(lab, name, address, 22, SSH_UP_S)
    except HostsError as err:
        vm.stop()
        raise HostsError(f"{err} (its console: {vm.console_log})") from err
    access.forget(address, 22)
    return vm


def root_argv(lab: NetLab, access: SshAccess, login: str, address: str, port: int, argv: list[str]) -> list[str]:
    """The command line running `argv` as root on a prepared VM: over SSH as the site's login, through sudo, from
    the lab's admin machine (ssh hands the remote side one shell line, hence the quoting)."""
    return lab.argv(["ssh", "-F", str(access.config), "-p", str(port), f"{login}@{address}",
                     shlex.join(["sudo", *argv])])


def stop_all(lab: NetLab, folder: Path) -> list[str]:
    """Stop every VM whose folder is under `folder`; returns what was done."""
    done = []
    for workdir in sorted(p for p in folder.glob("*") if p.is_dir()) if folder.exists() else []:
        vm = VirtualMachine.found(lab, workdir.name, workdir)
        if vm:
            vm.stop()
            done.append(f"stopped VM {workdir.name}")
    return done
