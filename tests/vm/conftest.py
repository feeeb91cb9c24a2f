"""The VM lab's fixture (see vm_lab.py), and the skips, with the reason, of what this machine cannot run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from vm_lab import VmSite, vm_lab

HERE = Path(__file__).resolve().parent
TOOLS = ("qemu-system-x86_64", "qemu-img", "mmdebstrap", "mkfs.ext4", "podman", "ip")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = [t for t in TOOLS if not shutil.which(t)]
    reason = (f"missing {', '.join(missing)}: run scripts/tool-deps.sh and scripts/host-deps.sh" if missing else
              "a VM's tap device and network namespaces need root" if os.geteuid() != 0 else None)
    for item in items:
        if reason and HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def vm_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmSite]:
    with vm_lab(tmp_path_factory.mktemp("vm")) as site:
        yield site
