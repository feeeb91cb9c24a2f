"""audit_logging: audit rules, persistent journal, retention, in-country shipping (SOV-AUD-*)."""

from __future__ import annotations

import pytest

RULE_KEYS = ["identity", "scope", "time-change", "kernel_modules", "mounts", "sovkit-data"]


@pytest.fixture(scope="module")
def rules(host) -> str:
    return host.check_output("cat /etc/audit/rules.d/*.rules")


@pytest.mark.control("SOV-AUD-001")
@pytest.mark.parametrize("key", RULE_KEYS)
def test_audit_rule_present(rules, evidence, key):
    """Changes to identities, sudoers, time, kernel modules, mounts and the kit's data are audited
    (CIS 6.2.3.x); each key is its own result."""
    lines = [ln for ln in rules.splitlines() if ln.endswith(f"-k {key}")]
    evidence(lines[:3])
    assert lines


@pytest.mark.control("SOV-AUD-001")
def test_model_store_watched(rules, site, evidence):
    """The model store is watched for writes and attribute changes."""
    rule = f"-w {site['sovkit_data_paths']['model_store']} -p wa -k sovkit-data"
    evidence(rule)
    assert rule in rules.splitlines()


@pytest.mark.control("SOV-AUD-001")
def test_sudo_log_watched(rules, site, evidence):
    """Every change to the file sudo logs to is audited, so the trail of root's commands cannot be edited unseen
    (CIS 6.2.3.3)."""
    assert site["audit_logging_sudo_logfile"] == site["os_baseline_sudo_logfile"]
    rule = f"-w {site['audit_logging_sudo_logfile']} -p wa -k sudo_log_file"
    evidence(rule)
    assert rule in rules.splitlines()


@pytest.mark.control("SOV-AUD-001")
@pytest.mark.live_only("the kernel audit subsystem is not reachable from a container")
def test_audit_rules_loaded(host, evidence):
    """The rules are loaded in the kernel (auditctl -l)."""
    out = host.check_output("auditctl -l")
    evidence(out[:500])
    assert "-k identity" in out and "-k sovkit-data" in out


@pytest.mark.control("SOV-AUD-002")
def test_auditd_enabled_keeps_logs(host, evidence):
    """auditd starts at boot and never deletes its logs (CIS 6.2.1.1, 6.2.2.2)."""
    conf = host.file("/etc/audit/auditd.conf").content_string
    evidence(f"enabled={host.service('auditd').is_enabled}")
    assert host.service("auditd").is_enabled
    assert "max_log_file_action = keep_logs" in conf


@pytest.mark.control("SOV-AUD-002")
@pytest.mark.parametrize(("key", "allowed"), [("disk_full_action", {"halt", "single"}),
                                              ("disk_error_action", {"syslog", "single", "halt"})])
def test_auditd_stops_the_system_when_it_cannot_log(host, evidence, key, allowed):
    """When the audit disk is full or failing, the system does not go on unaudited (CIS 6.2.2.3)."""
    conf = host.file("/etc/audit/auditd.conf").content_string
    values = [v.strip().lower() for k, _, v in (ln.partition("=") for ln in conf.splitlines()) if k.strip() == key]
    evidence(f"{key} = {values}")
    assert values[-1:] and values[-1] in allowed


@pytest.mark.control("SOV-AUD-002")
@pytest.mark.live_only("auditd cannot talk to the kernel audit socket from a container")
def test_auditd_running(host, evidence):
    """auditd is running now (CIS 6.2.1.2)."""
    evidence(host.run("systemctl is-active auditd").stdout)
    assert host.service("auditd").is_running


@pytest.mark.control("SOV-AUD-003")
@pytest.mark.parametrize("key", ["Storage", "MaxRetentionSec", "Compress", "ForwardToSyslog"])
def test_journald_persistent_retention(host, site, evidence, key):
    """The journal is on disk, compressed, kept for the profile's retention, and the one logging system: nothing is
    handed to a syslog daemon (CIS 6.1.1.3, 6.1.2.2-6.1.2.4; retention clause)."""
    effective = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    values = [ln.split("=", 1)[1] for ln in effective.splitlines() if ln.startswith(f"{key}=")]
    expected = {"Storage": "persistent", "MaxRetentionSec": f"{site['audit_logging_retention_days']}day",
                "Compress": "yes",
                "ForwardToSyslog": "yes" if site["audit_logging_journald_forward_to_syslog"] else "no"}
    evidence(f"{key}={values}")
    assert values[-1:] == [expected[key]]


@pytest.mark.control("SOV-AUD-004")
def test_logrotate_retention(host, site, evidence):
    """The kit's logs are kept for the profile's retention (CIS 6.1.3.8)."""
    conf = host.file("/etc/logrotate.d/sovkit").content_string
    days = site["audit_logging_retention_days"]
    evidence(conf)
    assert f"rotate {days}" in conf and f"maxage {days}" in conf
    assert host.run("logrotate -d /etc/logrotate.d/sovkit").rc == 0


@pytest.mark.control("SOV-AUD-004")
def test_logrotate_default_keeps_retention(host, site, evidence):
    """Every log without its own rotation rule is rotated daily and kept for the retention period, and logrotate
    runs each day (CIS 6.1.3.8)."""
    words = [line.split() for line in host.file("/etc/logrotate.conf").content_string.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    settings = {w[0]: w[1:] for w in words}
    timer = host.service("logrotate.timer")
    evidence(f"logrotate.conf: {sorted(settings)}; rotate {settings.get('rotate')}; timer enabled {timer.is_enabled}")
    assert "daily" in settings and not {"weekly", "monthly", "yearly"} & settings.keys()
    assert settings.get("rotate") == [str(site["audit_logging_retention_days"])]
    assert timer.is_enabled


# The login records: writable by group utmp and readable by all, as login(1) and last(1) need; every other log file
# is readable by its owner and group only and writable by its owner only (CIS 6.1.4.1's masks).
LOGIN_RECORDS = ("wtmp*", "btmp*", "lastlog*")
_RECORDS = " -o ".join(f"-name '{n}'" for n in LOGIN_RECORDS)


@pytest.mark.control("SOV-AUD-006")
def test_log_files_private(host, evidence):
    """No file under /var/log, the journal's included, is readable by others or writable by its group (the login
    records: writable by group utmp, readable by all), whatever wrote it (CIS 6.1.1.2, 6.1.4.1)."""
    out = host.run(f"find /var/log -type f \\( {_RECORDS} \\) -perm /0113 -printf '%m %p\\n'; "
                   f"find /var/log -type f ! \\( {_RECORDS} \\) -perm /0137 -printf '%m %p\\n'").stdout
    evidence(out.strip() or "every log file private")
    assert out.strip() == ""


@pytest.mark.control("SOV-AUD-006")
def test_log_file_owners(host, evidence):
    """Log files belong to root, syslog or a service account that cannot log in, and to a log group (root, adm,
    utmp, systemd-journal) or that service's own group: no person's account owns or can read a log (CIS 6.1.4.1)."""
    services = {f[0]: f[3] for f in (ln.split(":") for ln in host.check_output("getent passwd").splitlines())
                if len(f) > 6 and f[6].rsplit("/", 1)[-1] in ("nologin", "false")}
    groups = {f[2]: f[0] for f in (ln.split(":") for ln in host.check_output("getent group").splitlines())
              if len(f) > 2}
    rows = [ln.split(" ", 2) for ln in host.check_output("find /var/log -type f -printf '%u %g %p\\n'").splitlines()]
    wrong = [f"{user}:{group} {path}" for user, group, path in rows
             if user not in ("root", "syslog", *services)
             or group not in ("root", "adm", "utmp", "systemd-journal", groups.get(services.get(user, ""), "root"))]
    evidence(wrong[:20] or f"{len(rows)} files, owners as they should be")
    assert wrong == []


@pytest.mark.control("SOV-AUD-006")
def test_journal_access(host, evidence):
    """The journal's folders are root's, group systemd-journal, with no write for others, and its files are
    readable by that group only (CIS 6.1.1.2)."""
    out = host.run("find /var/log/journal -printf '%y %m %u %g %p\\n'").stdout
    rows = [ln.split(" ", 4) for ln in out.splitlines()]
    wrong = [" ".join(r) for r in rows
             if r[2] != "root" or r[3] not in ("root", "systemd-journal")
             or int(r[1], 8) & (0o5022 if r[0] == "d" else 0o7137)]
    evidence(wrong[:20] or f"{len(rows)} journal folders and files as they should be")
    assert rows, "/var/log/journal is missing: the journal is not persistent"
    assert wrong == []


@pytest.mark.control("SOV-AUD-005")
@pytest.mark.parametrize("unit", ["systemd-journal-remote.socket", "systemd-journal-remote.service",
                                  "systemd-journal-gatewayd.socket", "systemd-journal-gatewayd.service"])
def test_host_receives_no_journal(host, evidence, unit):
    """A sovkit host only sends its journal: the receiver and the journal web server that come with the upload
    client are masked where installed, and never enabled or running (CIS 6.1.2.1.4)."""
    enabled = host.run(f"systemctl is-enabled {unit}").stdout.strip()
    active = host.run(f"systemctl is-active {unit}").stdout.strip()
    installed = host.package("systemd-journal-remote").is_installed
    evidence(f"{unit}: {enabled or 'not found'}, {active}; systemd-journal-remote installed: {installed}")
    assert active != "active" and enabled not in ("enabled", "enabled-runtime", "static", "indirect")
    assert not installed or enabled == "masked"


@pytest.mark.control("SOV-AUD-005")
def test_log_shipping_in_country(host, site, evidence):
    """Logs are shipped only to in-country collectors, or not at all (cross-border transfer clause)."""
    f = host.file("/etc/systemd/journal-upload.conf.d/50-sovkit.conf")
    collectors = site["audit_logging_remote_collectors"]
    if not collectors:
        evidence("no collector configured: nothing shipped")
        assert not f.exists or not host.service("systemd-journal-upload").is_enabled
        return
    urls = [ln.split("=", 1)[1] for ln in f.content_string.splitlines() if ln.startswith("URL=")]
    evidence(f"URL={urls}")
    assert urls == collectors[:1]
