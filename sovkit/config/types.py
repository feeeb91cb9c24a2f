"""Field types of the stack file. Each error message says what is allowed, in words an operator reads."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Annotated, Literal

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class StrictModel(BaseModel):
    """Unknown keys are errors, never ignored; stack keys are camelCase as Pulumi config keys are."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


Role = Literal["control_plane", "gpu_worker", "cpu_worker", "storage"]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]

_SLUG = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")
_DNS_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_DNS_LABEL}(\.{_DNS_LABEL})*\.?$")
# BCP-47 language tags as used for models: language, optional script, optional region (en, pt-BR, zh-Hant-TW, sw-KE).
_BCP47 = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$")
_EMAIL = re.compile(r"^[^@\s]+@([^@\s]+)$")
_REVISION = re.compile(r"^([0-9a-f]{40}|sha256:[0-9a-f]{64})$")
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


def check_slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError("lower-case letters, digits and '-', 2-63 characters, starting with a letter")
    return value


def check_country(value: str) -> str:
    if not (len(value) == 2 and value.isupper() and pycountry.countries.get(alpha_2=value)):
        raise ValueError("an ISO 3166-1 alpha-2 country code in capitals, such as ZA, IN, BR, KE, ID")
    return value


def _no_zone(value: str) -> None:
    """Python's ipaddress accepts an IPv6 zone id (fe80::1%eth0): it names an interface of one machine, which no
    firewall rule, certificate or other host can use."""
    if "%" in value:
        head, slash, prefix = value.partition("/")
        address, _, zone = head.partition("%")
        raise ValueError(f"an address without a zone id, such as {address}{slash}{prefix} (the zone id %{zone} names "
                         "an interface of one machine; no firewall rule or other host can use it)")


def _cidr(value: str) -> str:
    _no_zone(value)
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as err:
        raise ValueError(f"a network in CIDR form with no host bits set, such as 198.51.100.0/24 ({err})") from None


def _address(value: str) -> str:
    _no_zone(value)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("an IPv4 or IPv6 address, such as 198.51.100.10 or 2001:db8::10") from None


def is_address(value: str) -> bool:
    """An IPv4 or IPv6 address (never a name, never with a zone id)."""
    if "%" in value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _host(value: str) -> str:
    _no_zone(value)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        if _HOSTNAME.match(value):
            return value.rstrip(".").lower()
        raise ValueError("a DNS name or an IP address, such as ntp1.gov.example or 198.51.100.123") from None


def _language(value: str) -> str:
    if not _BCP47.match(value):
        raise ValueError("a BCP-47 language tag such as en, hi, pt-BR, sw-KE or zh-Hant")
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("an e-mail address such as noc@health.gov.example")
    return value


def _revision(value: str) -> str:
    if not _REVISION.match(value):
        raise ValueError("a 40-character git commit id, or sha256: followed by 64 hex digits")
    return value


def _sha256(value: str) -> str:
    if not _SHA256.match(value):
        raise ValueError("sha256: followed by the 64 hex digits of the file's SHA-256 (sha256sum FILE)")
    return value


def _share(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("a share of the items from 0 to 1, such as 0.6 for 60%")
    return value


def split_host_port(value: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); raises ValueError with what is allowed."""
    match = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", value) or re.match(r"^([^:\[\]]+):(\d+)$", value)
    if not match or not 1 <= int(match.group(2)) <= 65535:
        raise ValueError("host:port, such as pki.gov.example:443 or [2001:db8::5]:443, port 1-65535")
    return _host(match.group(1)), int(match.group(2))


def _host_port(value: str) -> str:
    split_host_port(value)
    return value


Slug = Annotated[str, AfterValidator(check_slug)]
CountryCode = Annotated[str, AfterValidator(check_country)]
Cidr = Annotated[str, AfterValidator(_cidr)]
IpAddress = Annotated[str, AfterValidator(_address)]
Host = Annotated[str, AfterValidator(_host)]
Language = Annotated[str, AfterValidator(_language)]
Email = Annotated[str, AfterValidator(_email)]
Revision = Annotated[str, AfterValidator(_revision)]
Sha256 = Annotated[str, AfterValidator(_sha256)]
Share = Annotated[float, AfterValidator(_share)]
HostPort = Annotated[str, AfterValidator(_host_port)]


def host_of_url(url: str) -> str | None:
    """The host part of a URL such as s3://store.gov.example/bucket or http://[2001:db8::1]:8080/x (after any
    user:password@, which the rules refuse on their own)."""
    match = re.match(r"^[a-z][a-z0-9+.-]*://(?:[^/?#]*@)?(\[[^\]]+\]|[^/:?#]*)", url)
    if not match:
        return None
    return match.group(1).strip("[]").lower() or None


def email_domain(address: str) -> str:
    return address.rsplit("@", 1)[1].lower()


# --- egress sets that amount to the Internet: the hygiene rule's analysis, plain data in and out -----------

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# The widest single prefix an egress set may name. IANA hands IPv4 to the regional registries in /8s, and /8 is the
# most any one holder was ever given (the legacy class A networks); IPv6 goes to the registries in /12s (a whole
# continent), and the largest allocations to one national network are /19s (Deutsche Telekom 2003::/19, Orange
# 2a01:c000::/19). A prefix wider than these is a typo or somebody else's continent, never one country's network.
MIN_PREFIX_V4 = 8
MIN_PREFIX_V6 = 16
# The networks of one country together are a small share of the address space; a set covering this share of its
# family or more (0.0.0.0/1 with 128.0.0.0/1, four /2s, 2000::/3 with the rest) is "the Internet" in pieces.
INTERNET_SHARE = 0.5
# IPv6 prefixes that carry every IPv4 address inside them, with the bit where the IPv4 address starts and the name
# of the mechanism: the NAT64 well-known prefix (RFC 6052, reaches IPv4 hosts through a translator), 6to4 (RFC 3056)
# and IPv4-mapped addresses.
IPV4_CARRIERS = {ipaddress.IPv6Network("64:ff9b::/96"): (96, "NAT64"), ipaddress.IPv6Network("2002::/16"): (16, "6to4"),
                 ipaddress.IPv6Network("::ffff:0:0/96"): (96, "IPv4 mapping")}


def spread_findings(cidrs: Sequence[str]) -> list[tuple[int | None, str, str, str]]:
    """(index, or None for the list as a whole; found; allowed; fix) for a list of networks in CIDR form that names
    a prefix wider than any one holder's, or covers so much of an address family that it is the Internet in pieces.
    An IPv6 prefix that carries IPv4 addresses (NAT64, 6to4, mapped) counts for the IPv4 it reaches. A list holding
    0.0.0.0/0 or ::/0 is left to the check that refuses those; entries that do not parse are left to their type."""
    nets: list[tuple[int, IPNetwork]] = []
    for i, cidr in enumerate(cidrs):
        try:
            nets.append((i, ipaddress.ip_network(str(cidr))))
        except ValueError:
            continue
    if any(n.prefixlen == 0 for _, n in nets):
        return []
    findings: list[tuple[int | None, str, str, str]] = []
    v6 = [(i, n, "") for i, n in nets if n.version == 6]
    refused = _family_findings(findings, cidrs, 6, v6)
    v4: list[tuple[int, IPNetwork, str]] = [(i, n, "") for i, n in nets if n.version == 4]
    v4 += [(i, *carried) for i, n, _ in v6 if i not in refused and (carried := ipv4_carried(n)) is not None]
    _family_findings(findings, cidrs, 4, v4)
    return findings


def _family_findings(findings: list, cidrs: Sequence[str], version: int,
                     family: list[tuple[int, IPNetwork, str]]) -> set[int]:
    """Adds the findings of one address family of a list; returns the indices it refused."""
    share = covered_share([n for _, n, _ in family], version)
    if family and share >= INTERNET_SHARE:
        names = [f"{cidrs[i]}{via}" for i, _, via in family]
        listed = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        findings.append((None, f"{listed} (together {share:.0%} of all IPv{version} addresses)",
                         f"the country's own networks, together well under half of all IPv{version} addresses",
                         "these prefixes add up to the Internet; list the country's own ranges"))
        return {i for i, _, _ in family}
    refused = set()
    widest = MIN_PREFIX_V4 if version == 4 else MIN_PREFIX_V6
    for i, net, via in family:
        if net.prefixlen < widest:
            refused.add(i)
            findings.append((i, f"{cidrs[i]}{via}", f"a prefix of /{widest} or longer for IPv{version}: no one "
                             "country holds a wider block", "list the country's own ranges (its registry publishes "
                             "them)"))
    return refused


def ipv4_carried(net: IPNetwork) -> tuple[ipaddress.IPv4Network, str] | None:
    """The IPv4 network an IPv6 prefix reaches through NAT64, 6to4 or IPv4 mapping, with a note saying so (None
    for a prefix that carries no IPv4)."""
    if net.version != 6:
        return None
    for carrier, (start, name) in IPV4_CARRIERS.items():
        if carrier.subnet_of(net):  # type: ignore[arg-type]
            return ipaddress.IPv4Network("0.0.0.0/0"), f" (every IPv4 address, through {name})"
        if net.subnet_of(carrier):  # type: ignore[arg-type]
            length = min(net.prefixlen - start, 32)
            first = (int(net.network_address) >> (128 - start - 32)) & 0xFFFFFFFF
            carried = ipaddress.IPv4Network((first, length), strict=False)
            return carried, f" (IPv4 {carried}, through {name})"
    return None


def covered_share(nets: list[IPNetwork], version: int) -> float:
    """The share of its address family (4 or 6) a set of networks covers, overlaps counted once."""
    if not nets:
        return 0.0
    total = sum(n.num_addresses for n in ipaddress.collapse_addresses(nets))  # type: ignore[type-var]
    return total / (2 ** (32 if version == 4 else 128))


# The field types' own checks, for the rules on role inputs (sovkit/config/checks.py): one definition each.
cidr = _cidr
address = _address
