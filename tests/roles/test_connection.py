"""playbooks/connection_plugins/sovkit_podman.py, the connection `sovkit up` reaches the local stack's hosts with:
modules run pipelined, files go in and come back byte for byte, root goes through runc and any other user through
podman exec, and a failing command's exit status and output come back. And the RuncPodmanBackend of
sovkit/compliance/conftest.py, the compliance suite's way to the same hosts: a command through runc sees the host
exactly as through podman exec."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import testinfra
import yaml

from sovkit.compliance.conftest import RuncPodmanBackend
from sovkit.hosts import BuiltImage, Lab, Podman
from sovkit.render.inventory import LOCAL_CONNECTION

sys.path.insert(0, str(Path(__file__).parent))
from harden_lab import REPO_ROOT, ansible_env, lone_host

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

HOST = "sovkit-conn-host"


@pytest.fixture(scope="module")
def host(podman: Podman, host_image: BuiltImage, lab: Lab) -> Iterator[str]:
    with lone_host(lab, host_image.tag, HOST, "198.51.100.39") as name:
        yield name


def play(podman: Podman, workdir: Path, tasks: list[dict], user: str = "root") -> subprocess.CompletedProcess:
    """Run ``tasks`` on the host through sovkit_podman, as the local stack's inventory reaches it, with -vvv."""
    inventory = {"all": {"hosts": {HOST: {"ansible_connection": LOCAL_CONNECTION, "ansible_host": HOST,
                                          "ansible_user": user}}}}
    (workdir / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (workdir / "play.yml").write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-vvv", "-i", str(workdir / "inventory.yml"),
         str(workdir / "play.yml")],
        cwd=REPO_ROOT, env=ansible_env(podman), capture_output=True, text=True, check=False, timeout=300)


def module_runs(output: str) -> list[str]:
    """The commands -vvv shows the connection running for modules (not the interpreter discovery)."""
    return [line for line in output.splitlines()
            if line.startswith(f"<{HOST}> RUN ") and "python3" in line and "FOUND" not in line]


def test_root_modules_run_pipelined_through_runc(host, podman: Podman, tmp_path: Path):
    """A module is one exec with the module on standard input (no copy into a remote folder first)."""
    proc = play(podman, tmp_path, [
        {"name": "stdin reaches the command", "ansible.builtin.command": {"cmd": "cat", "stdin": "habari"},
         "register": "echoed"},
        {"ansible.builtin.assert": {"that": ["echoed.stdout == 'habari'"]}},
        {"name": "who", "ansible.builtin.command": "id -un", "register": "who"},
        {"ansible.builtin.assert": {"that": ["who.stdout == 'root'"]}},
    ])
    assert proc.returncode == 0, proc.stdout[-4000:]
    modules = module_runs(proc.stdout)
    assert len(modules) == 2, modules
    assert all("'runc'" in r and "'exec'" in r for r in modules), modules
    assert "AnsiballZ" not in proc.stdout  # pipelined: no module file is put on the host


def test_files_go_in_and_come_back_unchanged(host, podman: Podman, tmp_path: Path):
    """copy and fetch move a binary file (every byte value, 1 MiB) without a change."""
    payload = bytes(range(256)) * 4096
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    fetched = tmp_path / "fetched.bin"
    proc = play(podman, tmp_path, [
        {"ansible.builtin.copy": {"src": str(source), "dest": "/root/payload.bin", "mode": "0600"}},
        {"ansible.builtin.fetch": {"src": "/root/payload.bin", "dest": str(fetched), "flat": True}},
        {"ansible.builtin.stat": {"path": "/root/payload.bin", "checksum_algorithm": "sha256"}, "register": "st"},
        {"ansible.builtin.copy": {"content": "{{ st.stat | to_json }}", "dest": "/root/stat.json"}},
        {"ansible.builtin.fetch": {"src": "/root/stat.json", "dest": str(tmp_path / "stat.json"), "flat": True}},
    ])
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert fetched.read_bytes() == payload
    stat = json.loads((tmp_path / "stat.json").read_text())
    assert stat["checksum"] == hashlib.sha256(payload).hexdigest()
    assert stat["mode"] == "0600" and stat["pw_name"] == "root"


def test_other_users_go_through_podman_exec(host, podman: Podman, tmp_path: Path):
    """A user other than root is resolved by podman (runc would need numeric ids): the command runs as them."""
    proc = play(podman, tmp_path, [
        {"ansible.builtin.command": "id -un", "register": "who"},
        {"ansible.builtin.assert": {"that": ["who.stdout == 'nobody'"]}},
    ], user="nobody")
    assert proc.returncode == 0, proc.stdout[-4000:]
    modules = module_runs(proc.stdout)
    assert modules and all("'podman'" in r or "/podman'" in r for r in modules), modules
    assert all("'-i'" in r for r in modules)


def test_failures_come_back_with_status_and_output(host, podman: Podman, tmp_path: Path):
    """A failing command fails its task with its exit status and what it wrote."""
    proc = play(podman, tmp_path, [{"ansible.builtin.shell": "echo to-stderr >&2; exit 3"}])
    assert proc.returncode == 2
    assert '"rc": 3' in proc.stdout or "rc: 3" in proc.stdout, proc.stdout[-3000:]
    assert "to-stderr" in proc.stdout


# What a command is allowed and where it runs: capabilities, seccomp, AppArmor or SELinux label, cgroup, namespaces.
CONFINEMENT = ("grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|Seccomp|NoNewPrivs):' /proc/self/status; "
               "cat /proc/self/attr/current 2>/dev/null; cat /proc/self/cgroup; readlink /proc/self/ns/*; id")


def test_the_compliance_suite_sees_the_host_through_runc_as_podman_exec_shows_it(host, podman: Podman,
                                                                                 monkeypatch: pytest.MonkeyPatch):
    """The checks of `sovkit verify` run as root through runc, confined exactly as podman exec confines them; an
    exit status and standard error come back; another user goes through podman exec."""
    monkeypatch.setenv("CONTAINERS_CONF", str(podman.conf))
    backend = RuncPodmanBackend(HOST)
    assert backend.container == podman("inspect", "--format", "{{.Id}}", HOST).strip()
    through_runc = testinfra.host.Host(backend)
    assert through_runc.run(CONFINEMENT).stdout == podman("exec", HOST, "/bin/sh", "-c", CONFINEMENT)
    failed = through_runc.run("echo to-stderr >&2; exit 3")
    assert (failed.rc, failed.stderr) == (3, "to-stderr\n")
    other = RuncPodmanBackend(f"nobody@{HOST}")
    assert other.container is None and testinfra.host.Host(other).check_output("id -un") == "nobody"
