"""Session fixtures for the role tests: the host image, the local apt repository, the test networks.

Everything is built once per session and shared by every Molecule scenario; the networks are podman
--internal networks on documentation ranges, and the machine's settings that podman changes are
restored when the session ends.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sovkit.hosts import AptRepo, BuiltImage, Lab, NetworkSpec, Podman, default_cache_dir, ensure_apt_repo, ensure_image

REPO_ROOT = Path(__file__).resolve().parents[2]
NET_IN = NetworkSpec("sovkit-test-in", "198.51.100.0/24")  # the "in-country" network
NET_OUT = NetworkSpec("sovkit-test-out", "203.0.113.0/24")  # the "foreign" network

MISSING_TOOLS = [tool for tool in ("podman", "runc", "mmdebstrap", "dpkg-scanpackages") if not shutil.which(tool)]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "podman test hosts need root (systemd as PID 1 fails rootless with podman 4.3)"
    elif MISSING_TOOLS:
        reason = f"missing {', '.join(MISSING_TOOLS)}: run scripts/host-deps.sh"
    if reason:
        for item in items:
            if "hosts" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def podman() -> Podman:
    return Podman(default_cache_dir() / "podman")


@pytest.fixture(scope="session")
def host_image(podman: Podman) -> BuiltImage:
    return ensure_image(podman)


@pytest.fixture(scope="session")
def apt_repo(host_image: BuiltImage) -> AptRepo:
    return ensure_apt_repo(host_image)


@pytest.fixture(scope="session")
def lab(podman: Podman) -> Iterator[Lab]:
    """The two test networks; on exit hosts and networks go and the machine's settings come back."""
    with Lab("sovkit-test", networks=[NET_IN, NET_OUT], podman=podman) as lab:
        yield lab
    assert lab.snapshot is not None
    leftover = lab.snapshot.changes()
    assert not leftover, f"machine settings not restored: {leftover}"


@pytest.fixture(scope="session")
def molecule_env(podman: Podman, host_image: BuiltImage, apt_repo: AptRepo, lab: Lab) -> dict[str, str]:
    """Environment Molecule (and through it Ansible and testinfra) runs with."""
    venv_bin = str(Path(os.sys.executable).parent)
    return {
        **podman.env(),
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
        "SOVKIT_HOST_IMAGE": host_image.tag,
        "SOVKIT_APT_REPO": str(apt_repo.path),
        "SOVKIT_NET_IN": NET_IN.name,
        "SOVKIT_NET_OUT": NET_OUT.name,
        "ANSIBLE_FORCE_COLOR": "false",
        "PY_COLORS": "0",
        "MOLECULE_NO_LOG": "false",
    }
