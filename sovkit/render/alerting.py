"""Hosts mode's alerting: Alertmanager's configuration from the stack's receivers and mail relay, and the host
rules Prometheus evaluates beside the serving chart's (sovkit/data/host_alert_rules.yaml)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from sovkit import ports
from sovkit.config.site import SiteConfig
from sovkit.config.types import email_domain, split_host_port

HOST_RULES_FILE = "host_alert_rules.yaml"
SMTPS_PORT = 465  # a relay that takes TLS from the first byte (Alertmanager's own rule)
SENDER_LOCAL_PART = "sovkit-alerts"
RECEIVER = "site"  # one Alertmanager receiver holding every receiver of the stack: each alert reaches all of them
SILENT_RECEIVER = "none"  # a site with no receivers: alerts show in Alertmanager and are sent nowhere
ALERTMANAGER_LISTEN = f"127.0.0.1:{ports.ALERTMANAGER}"
BLACKBOX_LISTEN = f"127.0.0.1:{ports.BLACKBOX_EXPORTER}"
TLS_PROBE_MODULE = "gateway_tls"
SITE_CA_PATH = "/etc/prometheus/sovkit-ca.crt"  # the site CA on the monitoring host, readable by Prometheus's user
# How soon a new group of alerts is sent, how often one that changed is sent again, and how often one that has not
# changed is repeated: Alertmanager's defaults, but for the first wait, kept short so a down host is known soon.
ROUTE_TIMING = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}


def alertmanager_args() -> list[str]:
    """Alertmanager's command line: on loopback, and an empty cluster address, which turns gossip (port 9094, no
    authentication) off: one Alertmanager serves the site."""
    return ["--config.file=/etc/prometheus/alertmanager.yml", "--storage.path=/var/lib/prometheus/alertmanager",
            f"--web.listen-address={ALERTMANAGER_LISTEN}", "--cluster.listen-address="]


def alert_sender(site: SiteConfig) -> str | None:
    """The From address of alert mail: the relay's sender if the stack names one, else sovkit-alerts@ the domain of
    the first email receiver (by name); None when no receiver is an email address."""
    relay = site.monitoring.smtp_relay
    if relay and relay.sender:
        return relay.sender
    emails = [r.email for _, r in sorted(site.monitoring.alert_receivers.items()) if r.email]
    return f"{SENDER_LOCAL_PART}@{email_domain(emails[0])}" if emails else None


def alertmanager_config(site: SiteConfig) -> dict:
    """alertmanager.yml: every receiver of the stack in one route, resolved alerts sent too, mail through the
    site's relay (validate has required one for any email receiver, in-country)."""
    receivers = sorted(site.monitoring.alert_receivers.items())
    emails = [{"to": r.email, "send_resolved": True} for _, r in receivers if r.email]
    hooks = [{"url": r.webhook, "send_resolved": True} for _, r in receivers if r.webhook]
    config: dict = {"route": {"receiver": RECEIVER if receivers else SILENT_RECEIVER, "group_by": ["alertname",
                                                                                                    "instance"],
                              **ROUTE_TIMING}}
    relay = site.monitoring.smtp_relay
    if emails and relay:
        # On port 465 Alertmanager speaks TLS from the first byte (and checks the relay's certificate); its
        # require_tls asks for STARTTLS on top, which such a relay does not offer (Alertmanager 0.25, Debian 12).
        starttls = relay.require_tls and split_host_port(relay.address)[1] != SMTPS_PORT
        config["global"] = {"smtp_smarthost": relay.address, "smtp_from": alert_sender(site),
                            "smtp_hello": site.name, "smtp_require_tls": starttls}
    receiver: dict = {"name": RECEIVER if receivers else SILENT_RECEIVER}
    if emails:
        receiver["email_configs"] = emails
    if hooks:
        receiver["webhook_configs"] = hooks
    config["receivers"] = [receiver]
    return config


def blackbox_config() -> dict:
    """blackbox.yml: one module, a TLS handshake with a gateway trusting the site's CA, so Prometheus reads each
    gateway's certificate expiry (probe_ssl_earliest_cert_expiry) and whether its TLS answers at all."""
    return {"modules": {TLS_PROBE_MODULE: {"prober": "tcp", "timeout": "5s",
                                           "tcp": {"tls": True, "tls_config": {"ca_file": SITE_CA_PATH}}}}}


@cache
def host_rule_groups() -> list[dict]:
    """The host rules' groups, as Prometheus loads them."""
    return yaml.safe_load(resources.files("sovkit.data").joinpath(HOST_RULES_FILE).read_text())["groups"]
