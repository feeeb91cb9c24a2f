"""A site of local hosts for the whole hardening playbook, driven by the kit's own `local` stack.

The stack file is stacks/Pulumi.local.yaml with only its number of nodes changed; its inventory is
what `sovkit inventory` renders (sovkit.render.inventory.render_inventory), so the play, `sovkit verify`
and the compliance suite all read the same facts. The hosts get the stack's node names, sit on a
podman --internal network and see the local apt repository at the
stack's mirror path, as `sovkit up --stack local` lays them out (see HOSTS_NETWORK for the one
difference).

Used by test_harden.py, test_verify_cli.py and bench/bench_harden.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from sovkit.config import SiteConfig, load_stack
from sovkit.converge import PlayRun
from sovkit.hosts import AptRepo, Attachment, HostSpec, Lab, NetworkSpec, Podman
from sovkit.render.inventory import render_inventory

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_STACK = REPO_ROOT / "stacks" / "Pulumi.local.yaml"


def local_stack(workdir: Path, cpu_workers: int = 1, control_planes: int = 1) -> Path:
    """A copy of the local stack with ``control_planes`` + ``cpu_workers`` nodes, written under workdir."""
    doc = yaml.safe_load(LOCAL_STACK.read_text())
    doc["config"]["sovereign-ai:localNodes"] = {"control_plane": control_planes, "cpu_worker": cpu_workers}
    for model in doc["config"]["sovereign-ai:models"].values():  # hosts mode: one replica on every worker
        model["replicas"] = cpu_workers
    path = workdir / "Pulumi.local.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# The hosts' network: the role scenarios' in-country network, not the stack's own localNetworkCidr, which
# `sovkit up --stack local` owns (a test session must not collide with a running local site). The address
# a host has does not change what it is checked against (in podman the play and the checks reach it by
# name), and this range is one of the local stack's in-country CIDRs.
HOSTS_NETWORK = NetworkSpec("sovkit-test-in", "198.51.100.0/24")


@contextmanager
def lone_host(lab: Lab, image_tag: str, name: str, address: str) -> Iterator[str]:
    """One systemd host on the test network at `address`, removed afterwards."""
    lab.add_network(HOSTS_NETWORK)
    lab.start(HostSpec(name, image_tag, (Attachment(HOSTS_NETWORK.name, address),)))
    try:
        yield name
    finally:
        lab.stop(name)
FIRST_ADDRESS = 40  # 198.51.100.40, .41, ... (the role scenarios use .5-.30)


def mirror_path(site: SiteConfig) -> str:
    """Where the stack says the hosts find the offline apt repository (file:///srv/... -> /srv/...)."""
    mirror = site.residency.apt_mirror
    assert mirror.startswith("file:"), f"the local stack's mirror must be a file: repository, not {mirror}"
    return "/" + mirror.removeprefix("file:").lstrip("/")


def host_names(inventory: dict[str, Any]) -> list[str]:
    return sorted({h for body in inventory["all"]["children"].values() for h in body["hosts"]})


def start_hosts(lab: Lab, image: str, repo: AptRepo, site: SiteConfig) -> list[str]:
    """Start the stack's nodes in ``lab`` (booted, the mirror mounted read-only), in parallel, on
    HOSTS_NETWORK (created if need be, and removed with the lab); returns their names."""
    net = HOSTS_NETWORK
    lab.add_network(net)
    names = host_names(render_inventory(site))
    base = net.subnet.rsplit(".", 1)[0]
    lab.start(*[HostSpec(name, image, (Attachment(net.name, f"{base}.{FIRST_ADDRESS + i}"),),
                         (repo.volume(mirror_path(site)),))
                for i, name in enumerate(names)])
    return names


def ansible_env(podman: Podman) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    return {**podman.env(), "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
            "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "false",
            "ANSIBLE_NOCOLOR": "true"}


def converge(podman: Podman, inv: dict[str, Any], workdir: Path, *extra: str) -> PlayRun:
    """ansible-playbook playbooks/harden.yml with ``inv`` (written to workdir/inventory.yml)."""
    inv_file = workdir / "inventory.yml"
    inv_file.write_text(yaml.safe_dump(inv, sort_keys=True))
    started = time.monotonic()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv_file),
         str(REPO_ROOT / "playbooks" / "harden.yml"), *extra],
        cwd=REPO_ROOT, env=ansible_env(podman), capture_output=True, text=True, check=False, timeout=900)
    return PlayRun(proc.returncode, time.monotonic() - started, proc.stdout + proc.stderr)


def stack_inventory(stack: Path) -> tuple[SiteConfig, dict[str, Any]]:
    site = load_stack(stack)
    return site, render_inventory(site)
