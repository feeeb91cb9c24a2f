"""The sovkit compliance suite: checks on live hosts, with expectations from the site's own inventory.

Run it through `sovkit verify STACK` (parallel across hosts, JUnit + JSON + HTML reports), or by hand
against one host of a rendered inventory:

    sovkit inventory stacks/Pulumi.<site>.yaml > inventory.yml
    SOVKIT_INVENTORY=inventory.yml SOVKIT_VERIFY_HOST=<host> pytest sovkit/compliance

Hosts of the `local` provider are reached with testinfra's podman:// backend, others over ssh://
(as ansible_user, with sudo; SOVKIT_SSH_IDENTITY names the key, SOVKIT_SSH_CONFIG an ssh_config). Each
check carries a control id (@pytest.mark.control) from sovkit/data/controls.yaml. A check skips for one of two
kinds of reason, and the report tells them apart:
- it cannot be evidenced on this host (a container cannot prove auditd, say): a plain pytest.skip with the reason;
  the clauses the check evidences are then not fully evidenced;
- it does not apply to this host (no gateway runs here): not_applicable(reason), whose reason starts with
  NOT_APPLICABLE; the clauses lose nothing by it.
A service the inventory gives a host but that is not installed there (a converge of the hardening play alone) is of
the first kind: it should run, and nothing proves how.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import pytest
import testinfra
import yaml
from testinfra.backend import base
from testinfra.backend.podman import PodmanBackend

from .runc import exec_argv, runc_container

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"
# The start of a skip reason that says the check does not apply to this host. sovkit's recorder
# (sovkit/verify/plugin.py) reads it; a standalone run shows it in the skip reason, as readable to an auditor.
NOT_APPLICABLE = "not applicable: "
CONTAINER_TYPES = {"podman", "docker", "lxc", "container-other", "systemd-nspawn", "containerd"}
# Where systemd-sysctl reads sysctl files at boot, lowest precedence first: a file in an earlier folder is replaced by
# one of the same name in a later folder, and all are applied in the order of their names (sysctl.d(5)).
SYSCTL_DIRS = ("/usr/lib/sysctl.d", "/lib/sysctl.d", "/usr/local/lib/sysctl.d", "/run/sysctl.d", "/etc/sysctl.d")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "control(id): the sovkit control (SOV-*) a check evidences")
    config.addinivalue_line("markers", "live_only(reason): needs a real host (not a container)")


def not_applicable(reason: str) -> NoReturn:
    """Skip a check that does not apply to this host, as the inventory describes it: nothing is left unproven."""
    pytest.skip(NOT_APPLICABLE + reason)


def load_inventory(path: str | Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


def inventory_hosts(inventory: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{host name: its variables}: all.vars, then its group's vars, then its own (Ansible's order)."""
    top = inventory["all"]
    hosts: dict[str, dict[str, Any]] = {}
    for group, body in (top.get("children") or {}).items():
        for name, hvars in ((body or {}).get("hosts") or {}).items():
            merged = {**(top.get("vars") or {}), **((body or {}).get("vars") or {}), **(hvars or {})}
            groups = [*hosts.get(name, {}).get("group_names", []), group]
            hosts[name] = {**hosts.get(name, {}), **merged, "group_names": groups}
    return hosts


def host_url(hvars: dict[str, Any]) -> str:
    """testinfra connection URL of a host: podman:// for local containers, ssh:// (with sudo) otherwise."""
    # sovkit_podman: the kit's connection to the local stack's hosts (playbooks/connection_plugins)
    if hvars.get("ansible_connection") in ("sovkit_podman", "containers.podman.podman", "podman"):
        return f"podman://{hvars['ansible_host']}"  # podman exec runs as root: no sudo needed
    user = hvars.get("ansible_user", "root")
    port = hvars.get("ansible_port", 22)
    url = f"ssh://{user}@{hvars['ansible_host']}:{port}"
    params = []
    if user != "root":
        params.append("sudo=true")
    key = os.environ.get("SOVKIT_SSH_IDENTITY")
    if key:
        params.append(f"ssh_identity_file={key}")
    config = os.environ.get("SOVKIT_SSH_CONFIG")  # an ssh_config of the operator's (a rehearsal passes its own)
    if config:
        params.append(f"ssh_config={config}")
    return url + ("?" + "&".join(params) if params else "")


def role_defaults() -> dict[str, Any]:
    """Every role's defaults: the kit-wide values the playbooks used where the stack sets none."""
    out: dict[str, Any] = {}
    for path in sorted(ROLES_DIR.glob("*/defaults/main.yml")):
        out.update(yaml.safe_load(path.read_text()) or {})
    return out


@pytest.fixture(scope="session")
def target() -> tuple[str, dict[str, Any]]:
    inv_path = os.environ.get("SOVKIT_INVENTORY")
    if not inv_path:
        pytest.skip("SOVKIT_INVENTORY is not set: run through `sovkit verify STACK` or export a rendered inventory")
    hosts = inventory_hosts(load_inventory(inv_path))
    name = os.environ.get("SOVKIT_VERIFY_HOST") or next(iter(hosts))
    if name not in hosts:
        pytest.fail(f"SOVKIT_VERIFY_HOST={name} is not in {inv_path} (hosts: {', '.join(hosts)})")
    return name, hosts[name]


@pytest.fixture(scope="session")
def site(target: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """The host's inventory variables over the roles' defaults: what the playbooks were given."""
    return {**role_defaults(), **target[1]}


class RuncPodmanBackend(PodmanBackend):
    """testinfra's podman:// backend, with each command started by runc itself where it can be (root, runc)."""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(name, *args, **kwargs)
        as_root = self.user in (None, "root", "0")
        self.container = runc_container(["podman"], self.name) if as_root else None

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        if not self.container:
            return super().run(command, *args, **kwargs)
        cmd = self.get_command(command, *args)
        out = self.run_local(shlex.join(exec_argv(self.container, ["/bin/sh", "-c"])) + " %s", cmd)
        out.command = self.encode(cmd)
        return out


@pytest.fixture(scope="session")
def host(target: tuple[str, dict[str, Any]]) -> Iterator[testinfra.host.Host]:
    url = host_url(target[1])
    if url.startswith("podman://"):
        yield testinfra.host.Host(RuncPodmanBackend(url.removeprefix("podman://")))
        return
    # One SSH connection for the whole suite: each check would otherwise pay a key exchange (a third of its time on
    # a real host, two thirds on an emulated one). Closed at the end, its socket in a folder only root can enter.
    folder = Path(tempfile.mkdtemp(prefix="sovkit-ssh-"))
    control = folder / "master"
    try:
        yield testinfra.get_host(url, controlpath=str(control))
    finally:
        if control.exists():
            subprocess.run(["ssh", "-o", f"ControlPath={control}", "-O", "exit", "the-verified-host"],
                           capture_output=True, timeout=30, check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def in_container(host: testinfra.host.Host) -> bool:
    return host.run("systemd-detect-virt --container").stdout.strip() in CONTAINER_TYPES


@pytest.fixture(scope="session")
def forwarding(site: dict[str, Any]) -> bool:
    """Whether the host routes (Kubernetes or containers): as the inventory told the roles."""
    return bool(site["os_baseline_ip_forwarding"])


@pytest.fixture(scope="session")
def installed_units(host: testinfra.host.Host, site: dict[str, Any]) -> list[str]:
    """The kit's units the play gave this host (sandbox_units) that are installed on it: a converge of the
    hardening play alone installs none of them. Asked once per host, not once per check."""
    return [u for u in site["sandbox_units"] if host.run(f"systemctl cat {shlex.quote(u)}").rc == 0]


@pytest.fixture(scope="session")
def host_python(host: testinfra.host.Host) -> Callable[..., str]:
    """Runs a probe script with the host's own python3 (as `user`, if given) and returns what it printed."""
    def run(script: str, *args: object, user: str | None = None) -> str:
        as_user = f"runuser -u {shlex.quote(user)} -- " if user else ""
        argv = " ".join(shlex.quote(str(a)) for a in args)
        return host.check_output(f"{as_user}python3 -c {shlex.quote(script)} {argv}")
    return run


class BootSysctls(NamedTuple):
    files: int  # how many sysctl files boot applies
    values: dict[str, tuple[str, str]]  # {key: (the value boot leaves it at, the file that sets it last)}


@pytest.fixture(scope="session")
def boot_sysctls(host: testinfra.host.Host) -> BootSysctls:
    """What systemd-sysctl sets each key to at boot, read from every sysctl file in the order it applies them: a
    file that sorts after another resets what that one set. Read once per host, for every check that needs it."""
    # every file at once (one round trip), each after a "==> path" line
    listing = host.check_output(f"for d in {' '.join(SYSCTL_DIRS)}; do for f in $d/*.conf; do "
                                "[ -f \"$f\" ] && echo \"==> $f\" && cat \"$f\"; done; done; true")
    files: dict[str, list[str]] = {}
    for line in listing.splitlines():
        if line.startswith("==> "):
            lines = files[line[4:].rsplit("/", 1)[1]] = []  # a later folder replaces a file of the same name
        else:
            lines.append(line)
    boot: dict[str, tuple[str, str]] = {}
    for name in sorted(files):
        boot.update((key, (value, name)) for key, value in sysctl_assignments(files[name]).items())
    return BootSysctls(len(files), boot)


def sysctl_assignments(lines: Iterable[str]) -> dict[str, str]:
    """{key: value} of a sysctl file's lines as sysctl.d(5) reads them: `key = value`, a leading '-' (ignore a
    missing key) dropped, '#' and ';' lines comments; a later line of a key wins."""
    found = {}
    for line in lines:
        key, sep, value = line.strip().lstrip("-").partition("=")
        if sep and not line.lstrip().startswith(("#", ";")):
            found[key.strip()] = value.strip()
    return found


@pytest.fixture
def evidence(record_property: Any):
    """Record what a check saw; it lands in the report next to the result."""
    def _record(text: object) -> None:
        record_property("evidence", str(text)[:2000])
    return _record


@pytest.fixture(autouse=True)
def _live_only(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("live_only")
    if marker and request.getfixturevalue("in_container"):
        pytest.skip(f"container host: {marker.args[0]}; runs on real hosts")
