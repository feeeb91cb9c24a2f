"""data_at_rest on a live host: the inspection is recorded and the required case fails closed."""

import json
import os
import subprocess
from pathlib import Path

import testinfra

HOST = testinfra.get_host("podman://sovkit-dr-host")


def test_inspection_recorded():
    """SOV-DAR-001: each data directory is reported with its mount and whether it is on dm-crypt."""
    report = json.loads(HOST.file("/var/lib/sovkit/data-at-rest.json").content_string)
    assert report["container"] is True
    assert sorted(v["path"] for v in report["volumes"]) == ["/srv/sovkit/models", "/var/log/sovkit"]
    assert all(v["encrypted"] is False for v in report["volumes"])  # overlay in a container
    assert report["required"] is False


def test_directories_created():
    """SOV-DAR-001: the data directories exist, root-owned, 0750."""
    d = HOST.file("/srv/sovkit/models")
    assert d.is_directory and d.user == "root" and d.mode == 0o750


def test_required_encryption_fails_closed(tmp_path):
    """SOV-DAR-001: with encryption required, the role refuses and names the unencrypted directory."""
    play = tmp_path / "required.yml"
    play.write_text(
        "- hosts: all\n  gather_facts: false\n  roles:\n    - role: data_at_rest\n"
        "      vars:\n        data_at_rest_required: true\n"
        "        data_at_rest_paths: {model_store: /srv/sovkit/models}\n"
    )
    proc = subprocess.run(
        ["ansible-playbook", "-i", "sovkit-dr-host,", "-c", "containers.podman.podman", str(play)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(Path(__file__).resolve().parents[4])},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-2000:]
    assert "Encryption at rest is required" in output
    assert "/srv/sovkit/models is on" in output


def test_ssh_login_still_works_after_converge():
    """The role never locks operators out: after converge a key login over SSH to the host still works."""
    HOST.check_output(
        "install -d -m 0700 /root/.ssh; "
        "test -f /root/.ssh/sovkit-check || ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/sovkit-check; "
        "install -d -o sovkit -g sovkit -m 0700 /home/sovkit/.ssh; "
        "install -o sovkit -g sovkit -m 0600 /root/.ssh/sovkit-check.pub /home/sovkit/.ssh/authorized_keys")
    result = HOST.run("ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=5 "
                      "-i /root/.ssh/sovkit-check sovkit@127.0.0.1 id -un")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "sovkit"
