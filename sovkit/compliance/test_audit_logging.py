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
@pytest.mark.live_only("auditd cannot talk to the kernel audit socket from a container")
def test_auditd_running(host, evidence):
    """auditd is running now (CIS 6.2.1.2)."""
    evidence(host.run("systemctl is-active auditd").stdout)
    assert host.service("auditd").is_running


@pytest.mark.control("SOV-AUD-003")
@pytest.mark.parametrize("key", ["Storage", "MaxRetentionSec"])
def test_journald_persistent_retention(host, site, evidence, key):
    """The journal is on disk and kept for the profile's retention (CIS 6.1.1.x; retention clause)."""
    effective = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    values = [ln.split("=", 1)[1] for ln in effective.splitlines() if ln.startswith(f"{key}=")]
    expected = {"Storage": "persistent", "MaxRetentionSec": f"{site['audit_logging_retention_days']}day"}
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
