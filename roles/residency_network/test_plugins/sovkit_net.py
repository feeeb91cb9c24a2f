"""Jinja tests on addresses, with the standard library only (no netaddr on the controller).

    "198.51.100.0/24" is sovkit_cidr
    "198.51.100.7" is sovkit_ip
    "198.51.100.0/24" is sovkit_cidr_contains("198.51.100.7")
    "198.51.100.7" is sovkit_in_any(["198.51.100.0/24"])
    "logs.gov.example" is sovkit_under_any_domain(["gov.example"])

A copy of this file sits in each role that validates addresses (roles ship their own plugins);
tests/roles/test_controls.py checks the copies are identical.
"""

from __future__ import annotations

import ipaddress


def sovkit_cidr(value: object) -> bool:
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return False
    return "/" in str(value)


def sovkit_ip(value: object) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def sovkit_cidr_contains(cidr: object, address: object) -> bool:
    try:
        return ipaddress.ip_address(str(address)) in ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return False


def sovkit_in_any(address: object, cidrs: object) -> bool:
    return any(sovkit_cidr_contains(cidr, address) for cidr in (cidrs or []))


def sovkit_under_any_domain(host: object, domains: object) -> bool:
    """host is one of the domains or a name under one of them (gov.example, a.gov.example)."""
    name = str(host).lower().rstrip(".")
    return any(name == d.lower().rstrip(".") or name.endswith("." + d.lower().rstrip(".")) for d in (domains or []))


class TestModule:
    def tests(self) -> dict[str, object]:
        return {
            "sovkit_cidr": sovkit_cidr,
            "sovkit_ip": sovkit_ip,
            "sovkit_cidr_contains": sovkit_cidr_contains,
            "sovkit_in_any": sovkit_in_any,
            "sovkit_under_any_domain": sovkit_under_any_domain,
        }
