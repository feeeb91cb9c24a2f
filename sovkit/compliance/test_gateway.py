"""The gateway on a serving host (SOV-GW-*): its TLS, its key material, and what it lets through to the model servers.

The probes run on the host itself, to the gateway on loopback: what they prove is the gateway's own behaviour
(the host firewall is proven by SOV-NET-*)."""

from __future__ import annotations

import json

import pytest

from .conftest import not_applicable

# A TLS handshake from the host's own Python, with what the client offers opened up (security level 0, every
# protocol) so that only the gateway's configuration can refuse; prints "ok <protocol> <cipher>" or "refused".
HANDSHAKE = """
import socket, ssl, sys
port, low, high, ciphers = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
ctx.minimum_version, ctx.maximum_version = ssl.TLSVersion[low], ssl.TLSVersion[high]
ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
try:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        print("ok", tls.version(), tls.cipher()[0])
except OSError as err:  # ssl.SSLError among them
    print("refused", err.__class__.__name__)
"""

# A request to the gateway on loopback without a key: prints the status and the body's JSON error, if any.
REQUEST = """
import json, ssl, sys, urllib.error, urllib.request
port, method, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
body = b'{"model": "any"}' if method == "POST" else None
request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", data=body, method=method,
                                 headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, context=ctx, timeout=10) as response:
        status, text = response.status, response.read()
except urllib.error.HTTPError as err:
    status, text = err.code, err.read()
try:
    error = json.loads(text).get("error")
except ValueError:
    error = None
print(json.dumps({"status": status, "error": error}))
"""

WEAK = {  # what the gateway must refuse: protocols before TLS 1.2, ciphers without forward secrecy or AEAD
    "TLS 1.0 and 1.1": ("TLSv1", "TLSv1_1", "ALL"),
    "TLS 1.2 without forward secrecy": ("TLSv1_2", "TLSv1_2", "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA"),
    "TLS 1.2 with CBC ciphers": ("TLSv1_2", "TLSv1_2", "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
                                 "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384"),
}
STRONG = {
    "TLS 1.3": ("TLSv1_3", "TLSv1_3", "DEFAULT"),
    "TLS 1.2 with ECDHE and AES-GCM": ("TLSv1_2", "TLSv1_2",
                                       "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"),
}


@pytest.fixture
def gateway_port(site, installed_units) -> int:
    if "nginx.service" not in site["sandbox_units"]:
        not_applicable("no gateway runs on this host")
    if "nginx.service" not in installed_units:
        pytest.skip("the gateway is not installed on this host")
    return int(site["gateway_listen_port"])


@pytest.mark.control("SOV-GW-001")
def test_gateway_speaks_modern_tls_only(host_python, gateway_port, evidence):
    """Tenants' prompts and keys cross the network only under TLS 1.2 or 1.3 with forward secrecy and AEAD
    ciphers: a client that offers anything older or weaker is refused, whatever the client allows."""
    refused = {name: host_python(HANDSHAKE, gateway_port, *offer) for name, offer in WEAK.items()}
    accepted = {name: host_python(HANDSHAKE, gateway_port, *offer) for name, offer in STRONG.items()}
    evidence({**{f"offered {k}": v for k, v in refused.items()}, **{f"offered {k}": v for k, v in accepted.items()}})
    assert all(v.startswith("refused") for v in refused.values()), refused
    assert all(v.startswith("ok ") for v in accepted.values()), accepted


KEY_MATERIAL = {  # path: (mode, what it holds)
    "{tls}": ("0o750", "the TLS folder"),
    "{tls}/gateway.key": ("0o600", "the gateway's TLS key"),
    "/etc/nginx/sovkit/tenants.json": ("0o600", "the tenants' key hashes and grants"),
    "/etc/nginx/sovkit/upstream-auth.conf": ("0o600", "the key the gateway presents to the model servers"),
}


@pytest.mark.control("SOV-GW-002")
def test_gateway_key_material_is_root_only(host, site, gateway_port, evidence):
    """The TLS key, the tenants' key hashes and the model servers' key are readable by root alone (nginx's master
    reads them before it drops to its workers' account)."""
    found, wrong = {}, {}
    for pattern, (mode, what) in KEY_MATERIAL.items():
        path = pattern.format(tls=site["gateway_tls_dir"])
        f = host.file(path)
        found[path] = f"{f.user}:{f.group} {oct(f.mode)}" if f.exists else "missing"
        if found[path] != f"root:root {mode}":
            wrong[path] = f"{found[path]}, not root:root {mode} ({what})"
    evidence(found)
    assert not wrong, wrong


@pytest.mark.control("SOV-GW-003")
def test_gateway_routes_only_the_openai_api(host_python, site, gateway_port, evidence):
    """vLLM's routes outside the OpenAI API take no key (pausing it, reloading its weights, RPC to its workers):
    through the gateway each answers an OpenAI-shaped 404, to anyone; the model servers' own routes ask for a
    tenant's key (401), so the gateway is what answers."""
    def ask(method: str, path: str) -> dict:
        return json.loads(host_python(REQUEST, gateway_port, method, path))

    refused = {f"{m} {p}": ask(m, p) for p in site["refused_model_server_routes"] for m in ("GET", "POST")}
    served = {f"POST {p}": ask("POST", p) for p in site["gateway_routes"]}
    served["GET /v1/models"] = ask("GET", "/v1/models")
    evidence({k: f"{v['status']} {(v['error'] or {}).get('type')}" for k, v in {**refused, **served}.items()})
    open_routes = {k: v for k, v in refused.items() if v["status"] != 404 or not v["error"]}
    assert not open_routes, f"reachable through the gateway: {open_routes}"
    unguarded = {k: v for k, v in served.items() if v["status"] != 401 or not v["error"]}
    assert not unguarded, f"answered without a tenant's key: {unguarded}"


@pytest.mark.control("SOV-GW-004")
def test_gateway_grants_are_as_rendered(host, site, gateway_port, evidence):
    """Each tenant reaches exactly the models the stack grants it, on the routes sovkit renders, and no key the
    stack does not name opens the gateway."""
    tenants = json.loads(host.file("/etc/nginx/sovkit/tenants.json").content_string)
    grants = {t: sorted(models) for t, models in tenants["models"].items()}
    expected = {t: sorted(v["models"]) for t, v in site["gateway_tenants"].items()}
    evidence({"grants": json.dumps(grants, sort_keys=True), "routes": ", ".join(sorted(tenants["routes"])),
              "served": json.dumps({m: sorted(r) for m, r in tenants["serves"].items()}, sort_keys=True),
              "keys": f"{len(tenants['keys'])} for tenants {sorted(set(tenants['keys'].values()))}"})
    assert grants == expected
    assert tenants["routes"] == site["gateway_routes"]
    assert {m: sorted(r) for m, r in tenants["serves"].items()} == site["gateway_model_routes"]
    assert sorted(tenants["keys"].values()) == sorted(site["gateway_tenants"])


@pytest.mark.control("SOV-GW-005")
def test_token_budgets_are_kept_as_rendered(host, site, gateway_port, evidence):
    """The budget keeper runs with exactly the stack's budgets, reading the gateway's own access log, and the gateway
    reads the marks of exactly those tenants where the keeper writes them."""
    config = json.loads(host.file(site["gateway_budget_keeper_config"]).content_string)
    tenants = json.loads(host.file("/etc/nginx/sovkit/tenants.json").content_string)
    keeper = host.service(site["gateway_budget_keeper_unit"])
    running = keeper.is_running
    evidence({"budgets": json.dumps(config["tenants"], sort_keys=True) if config["tenants"] else "none",
              "keeper running": str(running), "marks": config["marks"],
              "tenants the gateway checks": ", ".join(sorted(tenants["budgeted"])) or "none"})
    assert running and keeper.is_enabled, f"{site['gateway_budget_keeper_unit']} is not running and enabled"
    assert config["tenants"] == site["gateway_budgets"]
    assert config["log"] == f"{site['gateway_log_dir']}/access.json"
    assert sorted(tenants["budgeted"]) == sorted(site["gateway_budgets"])
    assert tenants["budget_marks"] == config["marks"] == site["gateway_budget_marks_dir"]
