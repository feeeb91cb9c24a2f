"""Hosts mode's alerting as sovkit renders it: Alertmanager's configuration from the stack's receivers and relay,
accepted by Alertmanager's own amtool, and the host rules checked and unit-tested by Prometheus' promtool: each
alert fires on the series that mean trouble and stays quiet on healthy ones."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sovkit.config import load_stack
from sovkit.render import alerting
from sovkit.render.role_vars import site_vars

ROOT = Path(__file__).resolve().parents[3]
PUNE = ROOT / "stacks" / "Pulumi.in-mh-pune.yaml"
LOCAL = ROOT / "stacks" / "Pulumi.local.yaml"
needs_amtool = pytest.mark.skipif(shutil.which("amtool") is None,
                                  reason="amtool is not installed (Debian package prometheus-alertmanager)")
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool is not installed (Debian package prometheus)")


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_every_receiver_gets_every_alert_and_mail_leaves_through_the_relay_with_tls():
    site = load_stack(PUNE)
    config = alerting.alertmanager_config(site)
    assert config["route"]["receiver"] == "site"
    [receiver] = config["receivers"]
    assert receiver["email_configs"] == [{"to": "duty@mh.gov.example", "send_resolved": True}]
    assert receiver["webhook_configs"] == [{"url": "https://alerts.mh.gov.example/hooks/sovkit",
                                            "send_resolved": True}]
    assert config["global"] == {"smtp_smarthost": "smtp.mh.gov.example:465",
                                "smtp_from": "sovkit-alerts@mh.gov.example", "smtp_hello": "in-mh-pune",
                                "smtp_require_tls": False}  # TLS from the first byte on 465, not STARTTLS


def test_a_relay_on_another_port_must_offer_starttls():
    site = load_stack(PUNE)
    relay = site.monitoring.smtp_relay.model_copy(update={"address": "smtp.mh.gov.example:587"})
    moved = dataclasses.replace(site, monitoring=site.monitoring.model_copy(update={"smtp_relay": relay}))
    assert alerting.alertmanager_config(moved)["global"]["smtp_require_tls"] is True


def test_a_site_without_receivers_sends_nowhere_and_says_so():
    config = alerting.alertmanager_config(load_stack(LOCAL))
    assert config["receivers"] == [{"name": "none"}] and config["route"]["receiver"] == "none"
    assert "global" not in config  # no relay to name


def test_the_monitoring_host_gets_alertmanager_and_the_probe_on_loopback():
    rendered = site_vars(load_stack(PUNE))
    assert rendered["monitoring_alertmanager_listen"] == "127.0.0.1:9093"
    assert rendered["monitoring_blackbox_listen"] == "127.0.0.1:9115"
    assert rendered["monitoring_alertmanager_config"] == alerting.alertmanager_config(load_stack(PUNE))
    module = rendered["monitoring_blackbox_config"]["modules"][rendered["monitoring_tls_probe_module"]]
    assert module["tcp"]["tls_config"]["ca_file"] == rendered["monitoring_ca_cert_path"]


@needs_amtool
@pytest.mark.parametrize("stack", [PUNE, LOCAL, ROOT / "stacks" / "Pulumi.br-ministerio-cpu.yaml"],
                         ids=lambda p: p.name)
def test_amtool_accepts_the_rendered_configuration(stack: Path, tmp_path: Path):
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alerting.alertmanager_config(load_stack(stack))))
    result = run("amtool", "check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_amtool
def test_amtool_would_refuse_a_broken_configuration(tmp_path: Path):
    """The role validates with amtool before writing: a receiver the route does not know is refused."""
    config = alerting.alertmanager_config(load_stack(PUNE))
    config["route"]["receiver"] = "nobody"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    assert run("amtool", "check-config", str(path)).returncode != 0


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "sovkit-hosts.yml"
    path.write_text(yaml.safe_dump({"groups": alerting.host_rule_groups()}))
    return path


@needs_promtool
def test_host_rules_parse(rules_file: Path):
    result = run("promtool", "check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr


HOST = 'instance="198.51.100.10:9100", job="node"'
ROOT_FS = f'{HOST}, mountpoint="/", fstype="ext4", device="/dev/sda1"'
DATA_FS = f'{HOST}, mountpoint="/var/lib/sovkit", fstype="ext4", device="/dev/sdb1"'
GATEWAY = 'instance="198.51.100.10:443", job="gateway-tls"'
GW_METRICS = 'instance="198.51.100.10:443", job="gateway"'
DAY = 86400


def fired(labels: dict, summary: str, description: str) -> dict:
    return {"exp_labels": labels, "exp_annotations": {"summary": summary, "description": description}}


@needs_promtool
def test_host_alerts_fire_on_trouble_and_stay_quiet_on_health(rules_file: Path, tmp_path: Path):
    node = {"instance": "198.51.100.10:9100", "job": "node"}
    down_node = {"severity": "critical", "instance": "198.51.100.11:9100", "job": "node"}
    root_fs = {**node, "mountpoint": "/", "fstype": "ext4", "device": "/dev/sda1"}
    gateway = {"instance": "198.51.100.10:443", "job": "gateway-tls"}
    tests = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f"up{{{HOST}}}", "values": "1x30"},
                {"series": 'up{instance="198.51.100.11:9100", job="node"}', "values": "1 1 1 0x27"},
                # the root file system at 5% free, the data one at 50%
                {"series": f"node_filesystem_avail_bytes{{{ROOT_FS}}}", "values": "5x30"},
                {"series": f"node_filesystem_size_bytes{{{ROOT_FS}}}", "values": "100x30"},
                {"series": f"node_filesystem_readonly{{{ROOT_FS}}}", "values": "0x30"},
                {"series": f"node_filesystem_avail_bytes{{{DATA_FS}}}", "values": "50x30"},
                {"series": f"node_filesystem_size_bytes{{{DATA_FS}}}", "values": "100x30"},
                {"series": f"node_filesystem_readonly{{{DATA_FS}}}", "values": "0x30"},
                {"series": f"node_memory_MemAvailable_bytes{{{HOST}}}", "values": "5x30"},
                {"series": f"node_memory_MemTotal_bytes{{{HOST}}}", "values": "100x30"},
                {"series": f"node_vmstat_oom_kill{{{HOST}}}", "values": "0 0 0 1x27"},
                # the certificate expires in 10 days from the start; the probe answers
                {"series": f"probe_ssl_earliest_cert_expiry{{{GATEWAY}}}", "values": f"{10 * DAY}x30"},
                {"series": f"probe_success{{{GATEWAY}}}", "values": "1x30"},
                {"series": 'alertmanager_notifications_failed_total{integration="email", job="alertmanager"}',
                 "values": "0 0 0 0 0 2x25"},
                # the gateway: 100 answers a minute, 10 of them 502; tenant registry refused 30 times in 60
                {"series": f'sovkit_gateway_responses_total{{{GW_METRICS}, tenant="health", status="200"}}',
                 "values": "0+90x30"},
                {"series": f'sovkit_gateway_responses_total{{{GW_METRICS}, tenant="health", status="502"}}',
                 "values": "0+10x30"},
                {"series": f'sovkit_gateway_responses_total{{{GW_METRICS}, tenant="registry", status="200"}}',
                 "values": "0+30x30"},
                {"series": f'sovkit_gateway_responses_total{{{GW_METRICS}, tenant="registry", status="429"}}',
                 "values": "0+30x30"},
            ],
            "alert_rule_test": [
                {"eval_time": "4m", "alertname": "SovkitNodeExporterDown", "exp_alerts": []},  # for: 2m
                {"eval_time": "6m", "alertname": "SovkitNodeExporterDown", "exp_alerts": [fired(
                    down_node, "198.51.100.11:9100: its node exporter does not answer (host down or unreachable)",
                    "Prometheus has not scraped 198.51.100.11:9100 for 2 minutes: the host, its exporter or the "
                    "network between them is down. Nothing else about this host is watched meanwhile.")]},
                {"eval_time": "15m", "alertname": "SovkitDiskSpaceLow", "exp_alerts": [fired(
                    {**root_fs, "severity": "warning"}, "198.51.100.10:9100: / has under 10% free",
                    "/ on 198.51.100.10:9100 has 5% free. Logs, audit records and model weights stop being "
                    "written when it fills.")]},
                {"eval_time": "15m", "alertname": "SovkitDiskSpaceCritical", "exp_alerts": []},
                {"eval_time": "15m", "alertname": "SovkitMemoryPressure", "exp_alerts": [fired(
                    {**node, "severity": "warning"}, "198.51.100.10:9100: under 10% of memory available",
                    "198.51.100.10:9100 has 5% of its memory available; the kernel's OOM killer may stop a model "
                    "server.")]},
                {"eval_time": "5m", "alertname": "SovkitSwapOrOomKills", "exp_alerts": [fired(
                    {**node, "severity": "critical"},
                    "198.51.100.10:9100: the kernel killed a process for lack of memory",
                    "198.51.100.10:9100 ran out of memory in the last 15 minutes and the kernel killed a process; "
                    "check which service restarted (journalctl -k).")]},
                {"eval_time": "5m", "alertname": "SovkitGatewayCertificateExpiring", "exp_alerts": [fired(
                    {**gateway, "severity": "warning"},
                    "198.51.100.10:443: the gateway's certificate expires in 9d 23h 55m 0s",
                    "A re-run of the converge renews a certificate the site CA signs once 30 days or fewer remain; "
                    "tenants' clients refuse an expired certificate.")]},
                {"eval_time": "5m", "alertname": "SovkitGatewayCertificateExpiringSoon", "exp_alerts": []},
                {"eval_time": "10m", "alertname": "SovkitGatewayTlsDown", "exp_alerts": []},
                {"eval_time": "4m", "alertname": "SovkitGatewayServerErrors", "exp_alerts": []},  # for: 5m
                {"eval_time": "12m", "alertname": "SovkitGatewayServerErrors", "exp_alerts": [fired(
                    {"severity": "critical", "instance": "198.51.100.10:443"},
                    "198.51.100.10:443: 6.25% of the gateway's answers are errors",
                    "Over 5% of the gateway's responses at 198.51.100.10:443 have been 5xx for 5 minutes: a model "
                    "server is down, overloaded or timing out (journalctl -u 'sovkit-vllm-*' on that host).")]},
                {"eval_time": "25m", "alertname": "SovkitTenantRateLimited", "exp_alerts": [fired(
                    {"severity": "warning", "instance": "198.51.100.10:443", "tenant": "registry"},
                    "Tenant registry: 50% of its requests refused (429)",
                    "For 10 minutes over 20% of registry's requests at 198.51.100.10:443 met its rate limit: raise "
                    "its requestsPerMinute in the stack, or ask it to send fewer.")]},
                {"eval_time": "8m", "alertname": "SovkitAlertDeliveryFailing", "exp_alerts": [fired(
                    {"severity": "critical", "integration": "email", "job": "alertmanager"},
                    "Alertmanager failed to deliver alerts by email",
                    "Alerts sent by email failed in the last 15 minutes (the mail relay or a webhook refused or "
                    "did not answer); the other receivers still get them.")]},
            ],
        }],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(tests))
    result = run("promtool", "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_a_wrong_expectation_fails(rules_file: Path, tmp_path: Path):
    """promtool's unit tests can fail: a healthy node is not expected down."""
    tests = {"rule_files": [str(rules_file)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": [{"series": f"up{{{HOST}}}", "values": "1x10"}],
        "alert_rule_test": [{"eval_time": "5m", "alertname": "SovkitNodeExporterDown",
                             "exp_alerts": [{"exp_labels": {"severity": "critical"}}]}]}]}
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(tests))
    assert run("promtool", "test", "rules", str(path)).returncode != 0
