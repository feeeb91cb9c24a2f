"""The Debian 12 host image: a minimal systemd rootfs built with mmdebstrap, cached as a tarball.

The image holds only what every host needs to be managed (systemd, sshd, python3 for Ansible); the
packages the roles install come later from an in-country mirror (or, in tests, the local file://
repository of :mod:`sovkit.hosts.aptrepo`), exactly as on an air-gapped site.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from sovkit.hosts._run import HostsError, log, run

SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
BASE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "python3", "python3-apt", "openssh-server",
    "iproute2", "procps", "sudo", "ca-certificates", "kmod",
)
# Units a container cannot or should not run: consoles and the first-boot wizard.
MASKED_UNITS = (
    "getty@.service", "serial-getty@.service", "console-getty.service", "systemd-firstboot.service",
    "getty-static.service",
)
HOSTNAME = "sovkit-host"
# Regenerate the SSH host keys per host at boot (the image ships none, so no two hosts share one).
SSH_KEYS_DROPIN = "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n"


def default_cache_dir() -> Path:
    """Where images and apt repositories are cached: $SOVKIT_CACHE_DIR or ~/.cache/sovkit/hosts."""
    env = os.environ.get("SOVKIT_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "sovkit" / "hosts"


@dataclass(frozen=True)
class ImageSpec:
    """What goes into the host image; its digest names the cached tarball and the podman tag."""

    suite: str = SUITE
    packages: tuple[str, ...] = BASE_PACKAGES
    mirrors: tuple[str, ...] = MIRRORS
    masked_units: tuple[str, ...] = MASKED_UNITS
    extra_hooks: tuple[str, ...] = field(default=())

    def hooks(self) -> list[str]:
        """mmdebstrap customize hooks (shell, run outside the chroot with the rootfs as $1)."""
        masks = " ".join(f'"$1/etc/systemd/system/{unit}"' for unit in self.masked_units)
        return [
            f"for u in {masks}; do ln -sf /dev/null \"$u\"; done",
            ': > "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id"',
            f'echo {HOSTNAME} > "$1/etc/hostname"',
            'rm -f "$1"/etc/ssh/ssh_host_*',
            'mkdir -p "$1/etc/systemd/system/ssh.service.d"',
            f'printf {shlex.quote(SSH_KEYS_DROPIN)} > "$1/etc/systemd/system/ssh.service.d/sovkit-hostkeys.conf"',
            # No package sources in the image: a site (or a test) configures its in-country mirror.
            'rm -f "$1/etc/apt/sources.list"; rm -rf "$1"/var/lib/apt/lists/*',
            *self.extra_hooks,
        ]

    @property
    def digest(self) -> str:
        text = "\n".join([self.suite, *self.packages, *self.mirrors, *self.hooks()])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def tag(self) -> str:
        return f"localhost/sovkit-host:{self.suite}-{self.digest}"


@dataclass(frozen=True)
class BuiltImage:
    spec: ImageSpec
    tarball: Path
    manifest: Path  # "package=version" per line: what the image already has

    @property
    def tag(self) -> str:
        return self.spec.tag

    def installed_packages(self) -> set[str]:
        return {line.split("=", 1)[0] for line in self.manifest.read_text().splitlines() if line}


def build_rootfs(spec: ImageSpec | None = None, cache_dir: Path | None = None) -> BuiltImage:
    """Build (or reuse from the cache) the rootfs tarball of ``spec``; needs root and mmdebstrap."""
    spec = spec or ImageSpec()
    cache = (cache_dir or default_cache_dir()) / "images"
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"sovkit-host-{spec.suite}-{spec.digest}.tar"
    manifest = cache / f"sovkit-host-{spec.suite}-{spec.digest}.manifest"
    if tarball.exists() and manifest.exists():
        return BuiltImage(spec, tarball, manifest)
    partial = tarball.with_suffix(".partial.tar")
    list_packages = "chroot \"$1\" dpkg-query -W -f='${Package}=${Version}\\n'"
    hooks = [*spec.hooks(), f"{list_packages} > {shlex.quote(str(manifest))}"]
    argv = ["mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar",
            f"--include={','.join(spec.packages)}"]
    argv += [f"--customize-hook={hook}" for hook in hooks]
    argv += [spec.suite, str(partial), *spec.mirrors]
    started = time.monotonic()
    log.info("building host image %s (mmdebstrap, about a minute)", spec.tag)
    try:
        run(argv, timeout=900)
    except HostsError:
        partial.unlink(missing_ok=True)
        manifest.unlink(missing_ok=True)
        raise
    partial.rename(tarball)
    log.info("host image built in %.0f s: %s", time.monotonic() - started, tarball)
    return BuiltImage(spec, tarball, manifest)
