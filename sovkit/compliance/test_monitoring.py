"""The monitoring stack on the host that runs it (SOV-MON-*)."""

from __future__ import annotations

import json

import pytest

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
        pytest.skip("Prometheus does not run on this host")
    if "prometheus.service" not in installed_units:
        pytest.skip("Prometheus is not installed on this host")
    answer = json.loads(host_python(ASK, site["monitoring_prometheus_listen"].rsplit(":", 1)[1]))
    flags = {name: answer["flags"].get(name) for name in ("web.enable-lifecycle", "web.enable-admin-api")}
    evidence({**flags, "POST /-/reload": str(answer["reload"])})
    assert flags == {"web.enable-lifecycle": "false", "web.enable-admin-api": "false"}, flags
    assert answer["reload"] != 200
