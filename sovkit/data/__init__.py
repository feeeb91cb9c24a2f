"""Package data: country profiles, the accelerator catalogue, the new-site template."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml


def data_text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def load_yaml(name: str) -> object:
    """A YAML data file of the package, parsed once per process."""
    return yaml.safe_load(data_text(name))


def names_in(folder: str, suffix: str = ".yaml") -> list[str]:
    """Stems of the data files in a folder of the package, sorted."""
    root = resources.files(__package__).joinpath(folder)
    return sorted(p.name[: -len(suffix)] for p in root.iterdir() if p.name.endswith(suffix))
