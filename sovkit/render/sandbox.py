"""The systemd sandbox of every service the kit runs, from sovkit/data/sandbox.yaml: the settings each service's
drop-in or unit carries, in order, and the exposure `systemd-analyze security` may rate it at most."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

SANDBOX_FILE = "sandbox.yaml"


@cache
def _data() -> dict:
    return yaml.safe_load(resources.files("sovkit.data").joinpath(SANDBOX_FILE).read_text())


def max_exposure() -> float:
    return float(_data()["max_exposure"])


def services() -> dict[str, str]:
    """{service: its systemd unit} (the model servers': a pattern with {model}, the served name)."""
    return {name: body["unit"] for name, body in _data()["services"].items()}


def settings(service: str) -> list[str]:
    """The `Setting=value` lines of `service`'s sandbox: the common settings with the service's own added or
    removed, a list value given once per item (systemd adds them up), in the data's order."""
    merged = {**_data()["common"], **_data()["services"][service]["settings"]}
    return [f"{key}={item}" for key, value in merged.items() if value is not None
            for item in (value if isinstance(value, list) else [value])]
