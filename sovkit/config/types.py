"""Field types of the stack file. Each error message says what is allowed, in words an operator reads."""

from __future__ import annotations

import ipaddress
import re
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


def check_slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError("lower-case letters, digits and '-', 2-63 characters, starting with a letter")
    return value


def check_country(value: str) -> str:
    if not (len(value) == 2 and value.isupper() and pycountry.countries.get(alpha_2=value)):
        raise ValueError("an ISO 3166-1 alpha-2 country code in capitals, such as ZA, IN, BR, KE, ID")
    return value


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as err:
        raise ValueError(f"a network in CIDR form with no host bits set, such as 198.51.100.0/24 ({err})") from None


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("an IPv4 or IPv6 address, such as 198.51.100.10 or 2001:db8::10") from None


def is_address(value: str) -> bool:
    """An IPv4 or IPv6 address (never a name)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _host(value: str) -> str:
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


def split_host_port(value: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); raises ValueError with what is allowed."""
    match = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", value) or re.match(r"^([^:\[\]]+):(\d+)$", value)
    if not match or not 1 <= int(match.group(2)) <= 65535:
        raise ValueError("host:port, such as pki.gov.example:443 or [2001:db8::5]:443, port 1-65535")
    return _host(match.group(1)), int(match.group(2))


Slug = Annotated[str, AfterValidator(check_slug)]
CountryCode = Annotated[str, AfterValidator(check_country)]
Cidr = Annotated[str, AfterValidator(_cidr)]
IpAddress = Annotated[str, AfterValidator(_address)]
Host = Annotated[str, AfterValidator(_host)]
Language = Annotated[str, AfterValidator(_language)]
Email = Annotated[str, AfterValidator(_email)]
Revision = Annotated[str, AfterValidator(_revision)]


def host_of_url(url: str) -> str | None:
    """The host part of a URL such as s3://store.gov.example/bucket or http://[2001:db8::1]:8080/x."""
    match = re.match(r"^[a-z][a-z0-9+.-]*://(\[[^\]]+\]|[^/:?#]*)", url)
    if not match:
        return None
    return match.group(1).strip("[]").lower() or None


def email_domain(address: str) -> str:
    return address.rsplit("@", 1)[1].lower()
