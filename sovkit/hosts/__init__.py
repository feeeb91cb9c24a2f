"""Real Debian 12 hosts under podman with systemd: the image, the local apt repository, networks.

Used by the role tests and by the `local` provider. Public API:

- :func:`ensure_image` / :class:`ImageSpec`: the mmdebstrap host image, cached and imported;
- :func:`ensure_apt_repo` / :class:`AptRepo`: the local file:// apt repository the hosts install from;
- :class:`Podman`, :class:`NetworkSpec`, :class:`HostSpec`, :class:`Attachment`: podman configured
  for systemd hosts (containers.conf fixes), internal networks, hosts;
- :class:`Lab`: networks + hosts as a context manager that cleans up and restores the machine;
- :class:`MachineSnapshot`: the machine settings podman changes, captured and restored.
"""

from sovkit.hosts._run import HostsError
from sovkit.hosts.aptrepo import MOUNT_POINT as APT_MOUNT_POINT
from sovkit.hosts.aptrepo import AptRepo, build_apt_repo
from sovkit.hosts.image import BuiltImage, ImageSpec, build_rootfs, default_cache_dir
from sovkit.hosts.lab import (
    ROLE_PACKAGES,
    Lab,
    LabLock,
    default_lock_path,
    ensure_apt_repo,
    ensure_image,
    use_local_mirror,
)
from sovkit.hosts.machine import MachineSnapshot
from sovkit.hosts.podman import Attachment, HostSpec, NetworkSpec, Podman

__all__ = [
    "APT_MOUNT_POINT",
    "ROLE_PACKAGES",
    "AptRepo",
    "Attachment",
    "BuiltImage",
    "HostSpec",
    "HostsError",
    "ImageSpec",
    "Lab",
    "LabLock",
    "MachineSnapshot",
    "NetworkSpec",
    "Podman",
    "build_apt_repo",
    "build_rootfs",
    "default_cache_dir",
    "default_lock_path",
    "ensure_apt_repo",
    "ensure_image",
    "use_local_mirror",
]
