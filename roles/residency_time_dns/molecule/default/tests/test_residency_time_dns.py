"""Time and DNS on a live host: names resolve through the approved in-country resolver."""

import testinfra

HOST = testinfra.get_host("podman://sovkit-td-host")


def test_name_resolves_through_approved_resolver():
    """SOV-DNS-001: the system resolver (glibc, resolv.conf) asks the in-country peer, which answers."""
    assert HOST.check_output("getent ahostsv4 portal.gov.example | head -1").split()[0] == "198.51.100.80"


def test_short_name_uses_in_country_search_domain():
    """SOV-DNS-001: a short name is completed with the in-country domain only."""
    assert HOST.check_output("getent ahostsv4 portal | head -1").split()[0] == "198.51.100.80"


def test_resolv_conf_lists_only_approved():
    """SOV-DNS-001: one nameserver, the approved one."""
    servers = [line.split()[1] for line in HOST.file("/etc/resolv.conf").content_string.splitlines()
               if line.startswith("nameserver")]
    assert servers == ["198.51.100.7"]


def test_chrony_servers():
    """SOV-TIME-001: chrony's configuration (checked by chronyd itself) lists only the in-country server."""
    conf = HOST.file("/etc/chrony/chrony.conf").content_string
    servers = [line.split()[1] for line in conf.splitlines() if line.startswith(("server", "pool"))]
    assert servers == ["198.51.100.7"]
    assert HOST.run("chronyd -p -f /etc/chrony/chrony.conf").rc == 0
    assert HOST.service("chrony").is_enabled


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
