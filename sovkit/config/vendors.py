"""The accelerator vendors the kit knows, one data file each under sovkit/data/vendors/."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sovkit.data import load_yaml, names_in


@dataclass(frozen=True)
class Vendor:
    name: str
    debian_components: tuple[str, ...]  # archive components the site's hosts need from the in-country mirror


@cache
def vendor(name: str) -> Vendor:
    data = load_yaml(f"vendors/{name}.yaml")
    assert isinstance(data, dict) and data.get("vendor") == name, f"sovkit/data/vendors/{name}.yaml names {name}"
    return Vendor(name, tuple(data["debian_components"]))


def vendor_names() -> list[str]:
    return names_in("vendors")
