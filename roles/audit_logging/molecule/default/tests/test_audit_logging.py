"""audit_logging on a live host: the rules compile, the journal is persistent, retention holds."""

import testinfra

HOST = testinfra.get_host("podman://sovkit-al-host")


def test_rules_compile_with_the_watched_paths():
    """SOV-AUD-001: augenrules merges the sovkit rules (auditctl cannot load them in a container)."""
    HOST.check_output("augenrules --check || true")
    merged = HOST.check_output("cat /etc/audit/rules.d/*.rules")
    for key in ("-k identity", "-k scope", "-k time-change", "-k kernel_modules", "-k mounts"):
        assert key in merged
    assert "-w /srv/sovkit/models -p wa -k sovkit-data" in merged


def test_journal_is_persistent_and_kept_400_days():
    """SOV-AUD-003: journald writes to /var/log/journal and keeps 400 days (the scenario's retention)."""
    assert HOST.check_output("systemd-analyze cat-config systemd/journald.conf | grep -E '^(Storage|MaxRetentionSec)='"
                             " | tail -2").split() == ["Storage=persistent", "MaxRetentionSec=400day"]
    HOST.check_output("logger sovkit-journal-probe && journalctl --flush")
    assert HOST.run("ls /var/log/journal/*/system.journal").rc == 0


def test_logrotate_retention():
    """SOV-AUD-004: logrotate accepts the config and keeps 400 rotations."""
    out = HOST.run("logrotate -d /etc/logrotate.d/sovkit")
    assert out.rc == 0, out.stderr
    assert "rotate 400" in HOST.file("/etc/logrotate.d/sovkit").content_string


def test_auditd_enabled():
    """SOV-AUD-002: auditd starts at boot on a real host."""
    assert HOST.service("auditd").is_enabled


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
