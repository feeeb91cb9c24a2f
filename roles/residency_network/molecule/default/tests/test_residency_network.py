"""Behaviour of the allowlist, proved with real connections and DNS queries across the test networks.

sovkit-rn-host (198.51.100.10 in-country, 203.0.113.10 foreign side) is hardened; sovkit-rn-admin
(198.51.100.5: admin network, approved resolver) and sovkit-rn-foreign (203.0.113.20) run greeters on
443 and 8443 and a DNS server on 53. Only 203.0.113.20:8443 is listed as an allowed endpoint.
"""

import json

import pytest
import testinfra

HOST = testinfra.get_host("podman://sovkit-rn-host")
ADMIN = testinfra.get_host("podman://sovkit-rn-admin")
FOREIGN = testinfra.get_host("podman://sovkit-rn-foreign")

PROBE = r"""
import json, socket, struct, sys
kind, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if kind == "tcp":
        s = socket.create_connection((addr, port), timeout=2)
        out = s.recv(100).decode().strip()
    else:
        q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x03gov\x07example\x00" + struct.pack("!HH", 1, 1)
        if kind == "udp53":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.sendto(q, (addr, port))
            r = s.recv(512)
        else:
            s = socket.create_connection((addr, port), timeout=2); s.sendall(struct.pack("!H", len(q)) + q)
            r = s.recv(514)[2:]
        out = socket.inet_ntoa(r[-4:]) if struct.unpack("!H", r[6:8])[0] == 1 else "no-answer"
    print(json.dumps({"ok": True, "out": out}))
except OSError as exc:
    print(json.dumps({"ok": False, "out": type(exc).__name__}))
"""


def probe(host, kind: str, addr: str, port: int) -> dict:
    result = host.run("python3 -c %s %s %s %s", PROBE, kind, addr, str(port))
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("port", [443, 8443])
def test_in_country_peer_reachable(port):
    """SOV-NET-003: in-country destinations are reachable on any port."""
    assert probe(HOST, "tcp", "198.51.100.5", port) == {"ok": True, "out": f"sovkit-peer sovkit-rn-admin {port}"}


def test_foreign_peer_unreachable():
    """SOV-NET-003: a foreign destination not listed is dropped (the connect times out)."""
    assert probe(HOST, "tcp", "203.0.113.20", 443) == {"ok": False, "out": "TimeoutError"}


def test_listed_foreign_endpoint_reachable():
    """SOV-NET-003: the one listed exception (203.0.113.20:8443) is reachable, and only that port."""
    assert probe(HOST, "tcp", "203.0.113.20", 8443) == {"ok": True, "out": "sovkit-peer sovkit-rn-foreign 8443"}


@pytest.mark.parametrize("kind", ["udp53", "tcp53"])
def test_dns_to_approved_resolver_answers(kind):
    """SOV-NET-004: DNS to the approved resolver gets an answer (UDP and TCP)."""
    assert probe(HOST, kind, "198.51.100.5", 53) == {"ok": True, "out": "198.51.100.80"}


@pytest.mark.parametrize("kind", ["udp53", "tcp53"])
def test_dns_to_foreign_resolver_blocked(kind):
    """SOV-NET-004: DNS to any other resolver is dropped, so names cannot leak abroad."""
    assert probe(HOST, kind, "203.0.113.20", 53)["ok"] is False


def test_peers_themselves_are_reachable_from_each_other_side():
    """Control for the two tests above: the foreign peer does serve DNS and 443 (seen from itself)."""
    assert probe(FOREIGN, "udp53", "203.0.113.20", 53) == {"ok": True, "out": "198.51.100.80"}
    assert probe(FOREIGN, "tcp", "203.0.113.20", 443)["ok"] is True


def test_ssh_login_from_admin_network_still_works():
    """SOV-NET-002: after converge an SSH login from the admin network succeeds (key, as sovkit)."""
    result = ADMIN.run(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=5 sovkit@198.51.100.10 id -un"
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "sovkit"


def test_ssh_from_foreign_network_dropped():
    """SOV-NET-002: SSH from outside the admin networks never gets a TCP handshake."""
    assert probe(FOREIGN, "tcp", "203.0.113.10", 22) == {"ok": False, "out": "TimeoutError"}


def test_drops_are_counted():
    """SOV-NET-005: dropped egress and ingress are counted, so attempted exfiltration is visible."""
    probe(HOST, "tcp", "203.0.113.20", 443)
    counters = json.loads(HOST.check_output("nft -j list counters table inet sovkit"))["nftables"]
    packets = {c["counter"]["name"]: c["counter"]["packets"] for c in counters if "counter" in c}
    assert packets["egress_dropped"] > 0
    assert packets["input_dropped"] > 0


def test_ruleset_survives_restart():
    """SOV-NET-001: the ruleset is loaded by nftables.service at boot (restart = what boot does)."""
    HOST.check_output("systemctl restart nftables")
    assert HOST.service("nftables").is_enabled
    assert probe(HOST, "tcp", "203.0.113.20", 443)["ok"] is False
    assert probe(HOST, "tcp", "198.51.100.5", 443)["ok"] is True
