"""The monitoring stack on the host that runs it (SOV-MON-*)."""

from __future__ import annotations

import json

import pytest
import yaml

from .conftest import not_applicable

# Prometheus's view of its own flags, and what a reload through its lifecycle API answers, asked on loopback as
# any local process could: prints {"flags": {...}, "reload": status}.
ASK = """
import json, sys, urllib.error, urllib.request
base = "http://127.0.0.1:" + sys.argv[1]
with urllib.request.urlopen(base + "/api/v1/status/flags", timeout=10) as response:
    flags = json.load(response)["data"]
try:
    with urllib.request.urlopen(urllib.request.Request(base + "/-/reload", method="POST"), timeout=10) as response:
        reload = response.status
except urllib.error.HTTPError as err:
    reload = err.code
print(json.dumps({"flags": flags, "reload": reload}))
"""


@pytest.mark.control("SOV-MON-001")
def test_prometheus_admin_apis_are_off(host_python, installed_units, site, evidence):
    """Prometheus's lifecycle API (reload, quit) and admin API (delete series, snapshots) take no password: with
    either on, any process on the host, a model server among them, could stop or wipe the site's monitoring."""
    if "prometheus.service" not in site["sandbox_units"]:
        not_applicable("Prometheus does not run on this host")
    if "prometheus.service" not in installed_units:
        pytest.skip("Prometheus is not installed on this host")
    answer = json.loads(host_python(ASK, site["monitoring_prometheus_listen"].rsplit(":", 1)[1]))
    flags = {name: answer["flags"].get(name) for name in ("web.enable-lifecycle", "web.enable-admin-api")}
    evidence({**flags, "POST /-/reload": str(answer["reload"])})
    assert flags == {"web.enable-lifecycle": "false", "web.enable-admin-api": "false"}, flags
    assert answer["reload"] != 200


# Alertmanager's own view of its configuration and cluster, and Prometheus's view of the Alertmanagers it hands
# alerts to, asked on loopback: prints {"status": {...}, "alertmanagers": [...]}.
ASK_ALERTING = """
import json, sys, urllib.request
def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)
status = get("http://" + sys.argv[1] + "/api/v2/status")
active = get("http://127.0.0.1:" + sys.argv[2] + "/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
print(json.dumps({"status": status, "alertmanagers": [a["url"] for a in active]}))
"""


def _listeners(host, port: int) -> list[str]:
    return [line.split()[3] for line in host.check_output(f"ss -Hltn 'sport = :{port}'").splitlines() if line]


@pytest.mark.control("SOV-MON-002")
def test_alerts_reach_the_sites_receivers_through_one_alertmanager_on_loopback(
        host, host_python, installed_units, site, evidence):
    """Every alert Prometheus raises goes to Alertmanager, and from there to each receiver the stack names, mail
    through the stack's relay; Alertmanager answers on loopback only (its API silences alerts without a password)
    and gossips with no one (its cluster port is off)."""
    unit = "prometheus-alertmanager.service"
    if unit not in site["sandbox_units"]:
        not_applicable("Alertmanager does not run on this host")
    if unit not in installed_units:
        pytest.skip("Alertmanager is not installed on this host")
    listen = site["monitoring_alertmanager_listen"]
    answer = json.loads(host_python(ASK_ALERTING, listen, site["monitoring_prometheus_listen"].rsplit(":", 1)[1]))
    config = yaml.safe_load(answer["status"]["config"]["original"])
    [receiver] = [r for r in config["receivers"] if r["name"] == config["route"]["receiver"]]
    live = sorted([e["to"] for e in receiver.get("email_configs", [])] +
                  [w["url"] for w in receiver.get("webhook_configs", [])])
    stack = sorted(r.get("email") or r["webhook"] for r in site["sovkit_monitoring"]["alert_receivers"])
    relay = config.get("global", {}).get("smtp_smarthost")
    listeners = _listeners(host, int(listen.rsplit(":", 1)[1]))
    evidence({"receivers": live, "mail relay": relay or "none", "cluster": answer["status"]["cluster"]["status"],
              "listening": listeners, "Prometheus hands alerts to": answer["alertmanagers"]})
    assert answer["status"]["cluster"]["status"] == "disabled", answer["status"]["cluster"]
    assert listeners == [listen], f"Alertmanager listens on {listeners}, not only {listen}"
    assert answer["alertmanagers"] == [f"http://{listen}/api/v2/alerts"], answer["alertmanagers"]
    assert live == stack, f"Alertmanager sends to {live}; the stack names {stack}"
    if any(r.get("email") for r in site["sovkit_monitoring"]["alert_receivers"]):
        assert relay == site["sovkit_monitoring"]["smtp_relay"], relay
    if not stack:
        pytest.skip("the stack names no alert receivers: alerts are kept in Alertmanager and sent nowhere")
