"""Debian 12 virtual machines under qemu: site machines with a kernel of their own, for what a container cannot
prove (auditd with its rules in the kernel, kernel sysctls, modules, chrony setting the clock, LUKS volumes,
cgroup v2 enforcing systemd's IP firewall).

A VM is one machine of a :class:`NetLab`, as a podman host is: its network card is a tap on the lab's bridge and
it holds the machine's addresses, so the lab's controller reaches it over SSH and it reaches the lab's stand-in
services, with no route anywhere else. What differs per machine (its addresses and routes, name, root's SSH key,
folders of this machine it sees read-only) reaches it on a small seed disk that a unit of the image applies at
every boot, before the network and sshd start.

The image is the host image (:mod:`sovkit.hosts.image`) plus a kernel, built with mmdebstrap once and cached as a
read-only raw ext4 file; each VM boots a throwaway qcow2 overlay of it, so nothing a test does survives the VM.
qemu runs with software emulation (tcg): the KVM this kind of machine offers runs only kernels built for it.

    vm = VirtualMachine.boot(lab, "vm-01", ["198.18.0.10/24"], public_key, workdir, disks_gib=[2])
    ...                                   # ssh root@198.18.0.10 from inside the lab (lab.argv)
    vm.stop()
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sovkit.hosts._run import HostsError, log, run
from sovkit.hosts.image import BASE_PACKAGES, MASKED_UNITS, BuiltImage, ImageSpec, build_rootfs
from sovkit.hosts.netlab import BRIDGE, NetLab

SEED_LABEL = "SOVKITSEED"
ROOT_LABEL = "sovkit-root"
ROOT_SIZE_GIB = 4
GUEST_IFACE = "eth0"  # net.ifnames=0: the one card keeps the kernel's name
# The kernel and what a server installed by its operator has besides the host image: udev for its disks,
# fsck for its root, cryptsetup for the LUKS data volume the operator made.
VM_PACKAGES = (*BASE_PACKAGES, "linux-image-amd64", "udev", "e2fsprogs", "cryptsetup-bin")
SEED_SCRIPT = rf"""#!/bin/sh
# Applies this machine's seed disk (written by sovkit.hosts.vm): network, name, root's key, shared folders.
set -eu
seed=/run/sovkit-seed
mkdir -p "$seed"
mount -o ro "LABEL={SEED_LABEL}" "$seed"
install -d -m 0755 /etc/systemd/network
install -m 0644 "$seed"/network/* /etc/systemd/network/
install -m 0644 "$seed/hostname" /etc/hostname
hostname "$(cat "$seed/hostname")"
install -d -m 0700 /root/.ssh
install -m 0600 "$seed/authorized_keys" /root/.ssh/authorized_keys
while read -r tag path; do
  [ -n "$tag" ] || continue
  mkdir -p "$path"
  mountpoint -q "$path" || mount -t 9p -o trans=virtio,version=9p2000.L,ro "$tag" "$path"
done < "$seed/shares"
umount "$seed"
"""
SEED_UNIT = rf"""[Unit]
Description=Apply this machine's seed disk (network, name, root's key, shared folders)
DefaultDependencies=no
Requires=dev-disk-by\x2dlabel-{SEED_LABEL}.device
After=dev-disk-by\x2dlabel-{SEED_LABEL}.device local-fs.target
Before=network-pre.target systemd-networkd.service ssh.service
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/sovkit-seed

[Install]
WantedBy=multi-user.target
"""


def _write(path: str, text: str, mode: str = "0644") -> str:
    """A customize hook writing `text` to `path` in the rootfs ($1)."""
    return f'install -D -m {mode} /dev/null "$1{path}" && printf %s {shlex.quote(text)} > "$1{path}"'


VM_IMAGE = ImageSpec(
    packages=VM_PACKAGES,
    masked_units=MASKED_UNITS,
    extra_hooks=(
        _write("/usr/local/sbin/sovkit-seed", SEED_SCRIPT, "0755"),
        _write("/etc/systemd/system/sovkit-seed.service", SEED_UNIT),
        _write("/etc/fstab", f"LABEL={ROOT_LABEL} / ext4 errors=remount-ro 0 1\n"),
        'chroot "$1" systemctl enable sovkit-seed.service systemd-networkd.service',
    ),
)


@dataclass(frozen=True)
class VmImage:
    """The VM image: a read-only raw ext4 root file and the kernel and initrd taken out of it, made from `rootfs`
    (whose manifest says what the VM already has installed)."""

    root: Path
    kernel: Path
    initrd: Path
    rootfs: BuiltImage


def build_vm_image(cache_dir: Path | None = None) -> VmImage:
    """The VM image, built (about a minute for the rootfs, seconds for the file system) or reused from the cache."""
    rootfs = build_rootfs(VM_IMAGE, cache_dir)
    stem = rootfs.tarball.with_suffix("")
    image = VmImage(stem.with_suffix(".root.raw"), stem.with_suffix(".vmlinuz"), stem.with_suffix(".initrd"),
                    rootfs)
    if image.root.exists() and image.kernel.exists() and image.initrd.exists():
        return image
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sovkit-vm-") as tmp:
        tree = Path(tmp) / "root"
        tree.mkdir()
        run(["tar", "-xpf", str(rootfs.tarball), "--numeric-owner", "--xattrs", "-C", str(tree)], timeout=300)
        kernels = sorted((tree / "boot").glob("vmlinuz-*"))
        initrds = sorted((tree / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise HostsError(f"the VM image {rootfs.tarball} has no kernel or initrd under /boot")
        partial = image.root.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        with partial.open("wb") as raw:
            raw.truncate(ROOT_SIZE_GIB << 30)  # sparse: only what the files use takes room
        run(["mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-d", str(tree), str(partial)], timeout=600)
        for source, target in ((kernels[-1], image.kernel), (initrds[-1], image.initrd)):
            target.write_bytes(source.read_bytes())
        partial.chmod(0o444)  # every VM boots an overlay of it; nothing writes it
        partial.rename(image.root)
    log.info("VM image made in %.0f s: %s", time.monotonic() - started, image.root)
    return image


def network_file(addresses: list[str], routes: list[str]) -> str:
    """systemd-networkd's file for the machine's card: its addresses, and an on-link route to each site network
    (one bridge carries them all, as in :class:`NetLab`)."""
    lines = ["[Match]", f"Name={GUEST_IFACE}", "", "[Network]", "LinkLocalAddressing=ipv6", "IPv6AcceptRA=no"]
    lines += [f"Address={ipaddress.ip_interface(a).with_prefixlen}" for a in addresses]
    for cidr in routes:
        lines += ["", "[Route]", f"Destination={ipaddress.ip_network(cidr)}", "Scope=link"]
    return "\n".join(lines) + "\n"


def _tap(lab: NetLab, name: str) -> str:
    return "t" + hashlib.sha256(f"{lab.site}/{name}".encode()).hexdigest()[:12]


def _mac(name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


@dataclass
class VirtualMachine:
    """One running VM of a lab. `boot` starts it; `stop` ends it and removes its overlay, disks and tap."""

    lab: NetLab
    name: str
    workdir: Path
    tap: str
    pid: int

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    @classmethod
    def boot(cls, lab: NetLab, name: str, addresses: list[str], public_key: str, workdir: Path, *,
             shares: dict[str, Path] | None = None, disks_gib: Sequence[int] = (), memory_mib: int = 2048,
             image: VmImage | None = None) -> VirtualMachine:
        """Start `name` in `lab` with `addresses` (CIDR notation), root's key `public_key`, the folders
        {path in the VM: folder here} shared read-only, and a blank disk of each size in `disks_gib` (/dev/vdc,
        /dev/vdd, ... in that order)."""
        image = image or build_vm_image()
        workdir.mkdir(parents=True, exist_ok=True)
        for stale in ("overlay.qcow2", "seed.raw", "console.log", *(d.name for d in workdir.glob("disk*.qcow2"))):
            (workdir / stale).unlink(missing_ok=True)
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image.root),
             str(workdir / "overlay.qcow2")], timeout=60)
        tags = {path: (f"share{i}", folder) for i, (path, folder) in enumerate((shares or {}).items())}
        seed = cls._seed(workdir, name, addresses, list(lab.site_cidrs), public_key,
                         {path: tag for path, (tag, _) in tags.items()})
        tap = _tap(lab, name)
        if tap not in run(["ip", "-n", lab.namespace, "-o", "link", "show"], timeout=30).stdout:
            run(["ip", "-n", lab.namespace, "tuntap", "add", "dev", tap, "mode", "tap"], timeout=30)
        run(["ip", "-n", lab.namespace, "link", "set", tap, "master", BRIDGE, "up"], timeout=30)
        argv = [
            "qemu-system-x86_64", "-name", name, "-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max",
            "-smp", "2", "-m", str(memory_mib), "-display", "none", "-monitor", "none",
            "-serial", f"file:{workdir / 'console.log'}", "-no-reboot",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", f"root=LABEL={ROOT_LABEL} rw console=ttyS0 net.ifnames=0 audit=1 quiet",
            "-drive", f"file={workdir / 'overlay.qcow2'},if=virtio,format=qcow2",
            "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
            "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=net0,mac={_mac(f'{lab.site}/{name}')}",
            "-pidfile", str(workdir / "qemu.pid"), "-daemonize",
        ]
        for number, gib in enumerate(disks_gib):
            disk = workdir / f"disk{number}.qcow2"
            run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), f"{gib}G"], timeout=60)
            argv += ["-drive", f"file={disk},if=virtio,format=qcow2"]
        for tag, folder in tags.values():
            argv += ["-virtfs", f"local,path={folder},mount_tag={tag},security_model=none,readonly=on"]
        run(lab.argv(argv), timeout=60)
        pid = int((workdir / "qemu.pid").read_text())
        log.info("VM %s booting (qemu pid %d, console %s)", name, pid, workdir / "console.log")
        return cls(lab, name, workdir, tap, pid)

    @classmethod
    def found(cls, lab: NetLab, name: str, workdir: Path) -> VirtualMachine | None:
        """The VM `boot` started in `workdir` (by an earlier run, say), if its qemu is still running."""
        try:
            pid = int((workdir / "qemu.pid").read_text())
        except (OSError, ValueError):
            return None
        vm = cls(lab, name, workdir, _tap(lab, name), pid)
        return vm if vm.running() else None

    @staticmethod
    def _seed(workdir: Path, name: str, addresses: list[str], routes: list[str], public_key: str,
              share_tags: dict[str, str]) -> Path:
        tree = workdir / "seed"
        (tree / "network").mkdir(parents=True, exist_ok=True)
        (tree / "network" / "10-sovkit.network").write_text(network_file(addresses, routes))
        (tree / "hostname").write_text(name + "\n")
        (tree / "authorized_keys").write_text(public_key.strip() + "\n")
        (tree / "shares").write_text("".join(f"{tag} {path}\n" for path, tag in share_tags.items()))
        seed = workdir / "seed.raw"
        with seed.open("wb") as raw:
            raw.truncate(8 << 20)
        run(["mkfs.ext4", "-q", "-F", "-L", SEED_LABEL, "-d", str(tree), str(seed)], timeout=60)
        return seed

    def running(self) -> bool:
        """Whether its qemu runs (a pid the system gave to another program since does not count)."""
        try:
            return b"qemu-system" in Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return False

    def stop(self, wait_s: float = 30) -> None:
        """End qemu (the guest gets no shutdown: its disks are thrown away) and remove the tap and the disks."""
        if self.running():
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + wait_s
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.2)
            if self.running():
                os.kill(self.pid, signal.SIGKILL)
        subprocess.run(["ip", "-n", self.lab.namespace, "link", "delete", self.tap], capture_output=True,
                       check=False, timeout=30)
        for leftover in ("overlay.qcow2", "seed.raw", "qemu.pid", *(d.name for d in self.workdir.glob("disk*.qcow2"))):
            (self.workdir / leftover).unlink(missing_ok=True)

