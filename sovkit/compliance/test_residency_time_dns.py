"""residency_time_dns: in-country time and approved resolvers only (SOV-TIME-*, SOV-DNS-*)."""

from __future__ import annotations

import pytest


def _directives(text: str, *names: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.split()[:1] and line.split()[0] in names]


@pytest.mark.control("SOV-TIME-001")
def test_chrony_sources_in_country(host, site, evidence):
    """chrony takes time only from the stack's in-country NTP servers: no pools, no DHCP-provided or
    drop-in sources (a foreign server could shift the clock that audit logs rely on) (CIS 2.3.3.1)."""
    conf = host.file("/etc/chrony/chrony.conf").content_string
    sources = _directives(conf, "server", "pool", "peer", "sourcedir")
    evidence(f"chrony.conf sources: {sources}")
    assert [s[1] for s in sources if s[0] == "server"] == list(site["residency_time_dns_ntp_servers"])
    assert [s for s in sources if s[0] != "server"] == []


@pytest.mark.control("SOV-TIME-002")
def test_chrony_enabled(host, evidence):
    """chrony starts at boot (CIS 2.3.1.1)."""
    svc = host.service("chrony")
    evidence(f"chrony enabled={svc.is_enabled}")
    assert svc.is_enabled


@pytest.mark.control("SOV-TIME-002")
@pytest.mark.live_only("chronyd needs CAP_SYS_TIME, which a container must not have")
def test_chrony_synchronised(host, site, evidence):
    """The clock is synchronised to one of the in-country servers (chronyc tracking)."""
    out = host.run("chronyc -n tracking").stdout
    evidence(out)
    ref = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Reference ID")), "")
    assert any(f"({server})" in ref for server in site["residency_time_dns_ntp_servers"])
    assert "Normal" in out


@pytest.mark.control("SOV-DNS-001")
def test_resolvers_approved_only(host, site, evidence):
    """The system resolver asks only the approved resolvers (resolv.conf)."""
    conf = host.file("/etc/resolv.conf").content_string
    servers = [d[1] for d in _directives(conf, "nameserver")]
    evidence(f"nameservers: {servers}")
    assert servers == list(site["residency_time_dns_resolvers"])[:3]


@pytest.mark.control("SOV-DNS-001")
def test_search_domains_in_country(host, site, evidence):
    """Short names are completed only with in-country domains."""
    search = [d[1:] for d in _directives(host.file("/etc/resolv.conf").content_string, "search")]
    evidence(f"search: {search}")
    assert all(set(s) <= set(site["residency_time_dns_search_domains"]) for s in search)


@pytest.mark.control("SOV-DNS-002")
@pytest.mark.parametrize(("key", "expected"), [("FallbackDNS", ""), ("DNSOverTLS", "no"), ("LLMNR", "no"),
                                               ("MulticastDNS", "no")])
def test_no_fallback_or_dot(host, evidence, key, expected):
    """systemd-resolved, wherever it runs, has no built-in fallback (Cloudflare, Google, Quad9) and no
    DNS-over-TLS that could carry names abroad."""
    conf = host.file("/etc/systemd/resolved.conf.d/50-sovkit.conf").content_string
    values = [line.split("=", 1)[1].strip() for line in conf.splitlines() if line.startswith(f"{key}=")]
    evidence(f"{key}={values}")
    assert values == [expected]
