"""residency_network: the nftables allowlist in force (SOV-NET-*), read from the live kernel ruleset."""

from __future__ import annotations

import ipaddress
import json

import pytest


@pytest.fixture(scope="module")
def ruleset(host) -> dict:
    """The live ruleset of table inet sovkit, as nft -j prints it: chains, sets, rules, counters."""
    doc = json.loads(host.check_output("nft -j list table inet sovkit"))["nftables"]
    out: dict = {"chains": {}, "sets": {}, "rules": {}, "counters": {}}
    for item in doc:
        if "chain" in item:
            out["chains"][item["chain"]["name"]] = item["chain"]
        elif "set" in item:
            out["sets"][item["set"]["name"]] = _elements(item["set"].get("elem", []))
        elif "rule" in item:
            out["rules"].setdefault(item["rule"]["chain"], []).append(item["rule"])
        elif "counter" in item:
            out["counters"][item["counter"]["name"]] = item["counter"]
    return out


def _elements(elems: list) -> set[str]:
    out = set()
    for e in elems:
        if isinstance(e, str):
            out.add(str(ipaddress.ip_network(e)))
        elif "prefix" in e:
            out.add(f"{ipaddress.ip_address(e['prefix']['addr'])}/{e['prefix']['len']}")
        elif "range" in e:
            lo, hi = e["range"]
            out.update(str(n) for n in ipaddress.summarize_address_range(ipaddress.ip_address(lo),
                                                                           ipaddress.ip_address(hi)))
    return out


def _norm(items: list[str], v6: bool) -> set[str]:
    return {str(ipaddress.ip_network(i, strict=False)) for i in items if (":" in i) == v6}


def _text(rule: dict) -> str:
    return json.dumps(rule["expr"])


@pytest.mark.control("SOV-NET-001")
@pytest.mark.parametrize("chain", ["input", "output", "forward"])
def test_default_drop(ruleset, evidence, chain):
    """Anything not allowed is dropped, in each direction (CIS 4.3.8)."""
    c = ruleset["chains"].get(chain, {})
    evidence(f"chain {chain}: hook={c.get('hook')} policy={c.get('policy')}")
    assert (c.get("hook"), c.get("policy")) == (chain, "drop")


@pytest.mark.control("SOV-NET-001")
def test_ruleset_loaded_at_boot(host, evidence):
    """The ruleset survives a reboot: nftables.service is enabled and loads /etc/nftables.conf (CIS 4.3.10)."""
    svc = host.service("nftables")
    evidence(f"nftables enabled={svc.is_enabled}; conf check rc={host.run('nft -c -f /etc/nftables.conf').rc}")
    assert svc.is_enabled
    assert host.run("nft -c -f /etc/nftables.conf").rc == 0
    assert host.file("/etc/nftables.conf").contains("table inet sovkit")


@pytest.mark.control("SOV-NET-001")
def test_established_accepted_before_drop(ruleset, evidence):
    """Replies of allowed connections pass, and SSH replies always do: a run never cuts its own session."""
    first_in = _text(ruleset["rules"]["input"][0])
    out_rules = [_text(r) for r in ruleset["rules"]["output"]]
    evidence(f"input[0]={first_in}")
    assert "established" in first_in and "accept" in first_in
    assert any('"sport"' in r and "accept" in r for r in out_rules)


def _loopback_drop(rule: dict, protocol: str, address: dict | str) -> bool:
    """Whether an input rule drops every packet whose source is the given loopback address or network."""
    matches = [e["match"] for e in rule["expr"] if "match" in e]
    return (any("drop" in e for e in rule["expr"]) and len(matches) == 1
            and matches[0]["left"].get("payload") == {"protocol": protocol, "field": "saddr"}
            and matches[0]["right"] == address)


@pytest.mark.control("SOV-NET-001")
def test_loopback_only_on_lo(ruleset, evidence):
    """Loopback traffic is accepted on lo, and loopback source addresses arriving on any other interface (spoofed)
    are dropped, for both families (CIS 4.3.6)."""
    rules = ruleset["rules"]["input"]
    lo = next((i for i, r in enumerate(rules) if {"match": {"op": "==", "left": {"meta": {"key": "iif"}},
                                                            "right": "lo"}} in r["expr"]
               and any("accept" in e for e in r["expr"])), None)
    v4 = next((i for i, r in enumerate(rules) if _loopback_drop(r, "ip", {"prefix": {"addr": "127.0.0.0", "len": 8}})),
              None)
    v6 = next((i for i, r in enumerate(rules) if _loopback_drop(r, "ip6", "::1")), None)
    evidence(f"input: lo accept at {lo}, 127.0.0.0/8 drop at {v4}, ::1 drop at {v6}")
    assert None not in (lo, v4, v6)
    assert lo < v4 and lo < v6


@pytest.mark.control("SOV-NET-002")
@pytest.mark.parametrize("family", ["v4", "v6"])
def test_ssh_only_from_admin_cidrs(ruleset, site, evidence, family):
    """SSH is accepted from the stack's admin networks only (CIS 4.3.9)."""
    expected = _norm(site["residency_network_admin_cidrs"], family == "v6")
    found = ruleset["sets"].get(f"admin_{family}", set())
    evidence(f"admin_{family}={sorted(found)}")
    assert found == expected
    rules = [_text(r) for r in ruleset["rules"]["input"]]
    ssh_rules = [t for t in rules if '"dport"' in t and f"@admin_{family}" in t]
    assert len(ssh_rules) == (1 if expected else 0)
    assert all(f'"right": {site["residency_network_ssh_port"]}' in t for t in ssh_rules), ssh_rules


def _inbound(rule: dict) -> tuple[str, str, str, frozenset[str]] | None:
    """(family, protocol, ports, sources) of an input rule that admits a service from listed sources."""
    exprs = [e["match"] for e in rule["expr"] if "match" in e]
    source = next((m for m in exprs if m["left"].get("payload", {}).get("field") == "saddr"), None)
    port = next((m for m in exprs if m["left"].get("payload", {}).get("field") == "dport"), None)
    if source is None or port is None or str(source["right"]).startswith("@"):
        return None  # the SSH rule reads the named set of admin networks, checked on its own
    family = "v6" if source["left"]["payload"]["protocol"] == "ip6" else "v4"
    # nft prints a one-element set as the element itself: an address, or a prefix
    sources = source["right"]
    elements = sources["set"] if isinstance(sources, dict) and "set" in sources else [sources]
    right = port["right"]
    ports = f"{right['range'][0]}-{right['range'][1]}" if isinstance(right, dict) and "range" in right else str(right)
    return family, port["left"]["payload"]["protocol"], ports, _collapsed(_elements(elements))


def _collapsed(cidrs) -> frozenset[str]:
    """Networks as the addresses they cover: nft merges neighbours (.12 and .13 into .12/31) and keeps a network
    that holds an address listed beside it."""
    return frozenset(str(n) for n in ipaddress.collapse_addresses(ipaddress.ip_network(c) for c in cidrs))


@pytest.mark.control("SOV-NET-002")
def test_inbound_services_exactly_as_rendered(ruleset, site, evidence):
    """Besides SSH, the host admits exactly the services the site runs on it, each from exactly the networks
    that need it (a kubernetes node: the API, the supervisor and etcd from the nodes that join it, kubelet
    and the overlay between nodes; a serving host: the gateway from in-country networks), nothing else."""
    expected = {(family, rule["proto"], str(rule["ports"]), _collapsed(_norm(rule["from"][family], family == "v6")))
                for rule in site["residency_network_inbound"] for family in ("v4", "v6") if rule["from"][family]}
    found = {key for key in map(_inbound, ruleset["rules"]["input"]) if key}
    evidence(sorted((f, p, ports, sorted(src)) for f, p, ports, src in found))
    assert found == expected


@pytest.mark.control("SOV-NET-003")
@pytest.mark.parametrize("family", ["v4", "v6"])
def test_egress_in_country(ruleset, site, evidence, family):
    """Egress is allowed to the in-country networks of the stack and nowhere else by default
    (evidences the cross-border transfer clause)."""
    expected = _norm(site["residency_network_in_country_cidrs"], family == "v6")
    found = ruleset["sets"].get(f"in_country_{family}", set())
    evidence(f"in_country_{family}={sorted(found)}")
    assert found == expected


@pytest.mark.control("SOV-NET-003")
def test_listed_endpoints_only(ruleset, site, evidence):
    """Exceptions are exactly the stack's allowed endpoints, each with its justification."""
    found = set()
    for rule in ruleset["rules"]["output"]:
        text = _text(rule)
        if '"daddr"' in text and '"dport"' in text and "@" not in text and "accept" in text:
            exprs = rule["expr"]
            fields = {e["match"]["left"].get("payload", {}).get("field"): e["match"]["right"]
                      for e in exprs if "match" in e and isinstance(e["match"]["left"], dict)}
            addr, port = fields["daddr"], fields["dport"]
            found.add((addr, int(port)))
    expected = {(e["host"], int(e["port"])) for e in site["residency_network_allowed_endpoints"]}
    evidence(f"endpoints in ruleset: {sorted(found)}")
    assert found == expected


@pytest.mark.control("SOV-NET-003")
def test_final_drop_in_output(ruleset, evidence):
    """The output chain ends in a counted drop: what is not listed does not leave."""
    last = _text(ruleset["rules"]["output"][-1])
    evidence(last)
    assert "drop" in last and "egress_dropped" in last


@pytest.mark.control("SOV-NET-004")
def test_dns_only_to_resolvers(ruleset, site, evidence):
    """DNS (53, and DNS-over-TLS 853) goes only to the approved resolvers; other DNS is dropped even
    inside the country, so names cannot leak to another resolver."""
    expected = _norm([f"{r}/{128 if ':' in r else 32}" for r in site["residency_network_dns_resolvers"]], False)
    found = ruleset["sets"].get("resolvers_v4", set())
    rules = [_text(r) for r in ruleset["rules"]["output"]]
    idx_dns_drop = next(i for i, r in enumerate(rules) if "853" in r and "drop" in r)
    idx_in_country = next(i for i, r in enumerate(rules) if "@in_country_v4" in r)
    evidence(f"resolvers_v4={sorted(found)}; dns drop at {idx_dns_drop}, in-country accept at {idx_in_country}")
    assert found == expected
    assert idx_dns_drop < idx_in_country


@pytest.mark.control("SOV-NET-005")
@pytest.mark.parametrize("counter", ["input_dropped", "egress_dropped", "forward_dropped"])
def test_drops_counted(ruleset, evidence, counter):
    """Drops are counted per direction, so operators see attempted exfiltration (nft list counters)."""
    c = ruleset["counters"].get(counter)
    evidence(f"{counter}: {c}")
    assert c is not None


@pytest.mark.control("SOV-NET-005")
@pytest.mark.parametrize("chain", ["input", "output", "forward"])
def test_drops_logged_rate_limited(ruleset, site, evidence, chain):
    """Each chain logs what it drops, rate-limited so a flood cannot fill the disk."""
    texts = [_text(r) for r in ruleset["rules"][chain]]
    logged = [t for t in texts if '"log"' in t and '"limit"' in t]
    evidence(logged[:1])
    assert len(logged) >= 1
    assert site["residency_network_log_prefix"] in logged[-1]
