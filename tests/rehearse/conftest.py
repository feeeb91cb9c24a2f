"""Skips, with the reason, what this machine cannot run: the stand-ins need root, podman and Debian's tools."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MIRROR_TOOLS = ("apt-ftparchive", "gpg", "gpgv", "dpkg-deb")
HOST_TOOLS = ("podman", "runc", "mmdebstrap", "ip", "openssl", "apt-get")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing_mirror = [t for t in MIRROR_TOOLS if not shutil.which(t)]
    missing_hosts = [t for t in HOST_TOOLS if not shutil.which(t)]
    for item in items:
        if HERE not in Path(str(item.path)).parents:
            continue
        reason = None
        if missing_mirror:
            reason = f"missing {', '.join(missing_mirror)}: run scripts/host-deps.sh"
        elif "hosts" in item.keywords and os.geteuid() != 0:
            reason = "podman test hosts need root (systemd as PID 1 fails rootless with podman 4.3)"
        elif "hosts" in item.keywords and missing_hosts:
            reason = f"missing {', '.join(missing_hosts)}: run scripts/host-deps.sh"
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
