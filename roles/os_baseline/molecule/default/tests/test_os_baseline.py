"""os_baseline on a live host: SSH behaviour seen from an admin peer, and the settings in force."""

import pytest
import testinfra

HOST = testinfra.get_host("podman://sovkit-os-host")
ADMIN = testinfra.get_host("podman://sovkit-os-admin")
SSH = "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=5"


def test_key_login_as_admin_account_works():
    """SOV-OS-001/003: after converge the admin account (in the AllowGroups group) logs in with its key."""
    result = ADMIN.run(f"{SSH} sovkit@198.51.100.11 id -Gn")
    assert result.rc == 0, result.stderr
    assert "sovkit-ssh" in result.stdout.split()


def test_root_login_refused():
    """SOV-OS-001: root cannot log in, even with an authorised key."""
    HOST.check_output("install -d -m 0700 /root/.ssh && cp /home/sovkit/.ssh/authorized_keys /root/.ssh/")
    result = ADMIN.run(f"{SSH} root@198.51.100.11 true")
    assert result.rc == 255
    assert "Permission denied" in result.stderr


def test_password_authentication_not_offered():
    """SOV-OS-001: the server offers public keys only."""
    result = ADMIN.run(f"{SSH} -o PreferredAuthentications=password,keyboard-interactive sovkit@198.51.100.11 true")
    assert result.rc == 255
    assert "Permission denied (publickey)" in result.stderr


def test_account_outside_allow_groups_refused():
    """SOV-OS-003: an account with a valid key but outside AllowGroups cannot log in."""
    HOST.check_output("id outsider || useradd -m -s /bin/bash outsider")
    HOST.check_output("install -d -o outsider -m 0700 /home/outsider/.ssh && "
                      "install -o outsider -m 0600 /home/sovkit/.ssh/authorized_keys /home/outsider/.ssh/")
    result = ADMIN.run(f"{SSH} outsider@198.51.100.11 true")
    assert result.rc == 255


@pytest.mark.parametrize(("key", "value"), [
    ("permitrootlogin", "no"), ("passwordauthentication", "no"), ("maxauthtries", "3"),
    ("clientaliveinterval", "300"), ("banner", "/etc/issue.net"), ("allowgroups", "sovkit-ssh"),
])
def test_sshd_effective_setting(key, value):
    """SOV-OS-001..003: the effective sshd configuration (sshd -T), not just the file."""
    effective = dict(line.split(" ", 1) for line in HOST.check_output("sshd -T").splitlines() if " " in line)
    assert effective[key] == value


def test_weak_cipher_rejected():
    """SOV-OS-002: a client that insists on CBC ciphers gets no session."""
    result = ADMIN.run(f"{SSH} -o Ciphers=aes128-cbc sovkit@198.51.100.11 true")
    assert result.rc == 255
    assert "no matching cipher" in result.stderr


@pytest.mark.parametrize(("name", "value"), [
    ("net.ipv4.ip_forward", "0"), ("net.ipv4.conf.all.accept_redirects", "0"),
    ("net.ipv4.tcp_syncookies", "1"), ("net.ipv4.conf.all.rp_filter", "1"),
])
def test_network_sysctl_live(name, value):
    """SOV-OS-005: network sysctls are in force in the host's network namespace."""
    assert HOST.check_output(f"sysctl -n {name}") == value


def test_sudo_is_logged():
    """SOV-OS-010: sudo commands land in the sudo log."""
    HOST.check_output("sudo -u sovkit true; sudo true")
    assert HOST.file("/var/log/sudo.log").contains("COMMAND=/usr/bin/true")


def test_only_in_country_apt_source():
    """SOV-OS-009: apt knows one source, the mirror, and can install from it."""
    policy = HOST.check_output("apt-cache policy")
    assert "file:/srv/sovkit-apt ./" in policy
    assert "deb.debian.org" not in policy
    assert HOST.run("apt-get install -s -y logrotate").rc == 0


def test_disabled_module_config():
    """SOV-OS-007: modprobe refuses the disabled modules (config checked; no module loading in a container)."""
    out = HOST.check_output("modprobe --showconfig")
    assert "install cramfs /bin/true" in out
