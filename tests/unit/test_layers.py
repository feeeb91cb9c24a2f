"""The package keeps its layers (DESIGN.md): config holds what `validate` needs, renderers are pure functions of
it, adapters sit on top, and no import runs back up. Read from the source with the standard library's parser."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sovkit"
BASE = {"sovkit", "sovkit.errors", "sovkit.ports", "sovkit.data", "sovkit.stacks", "sovkit.workspace"}
# What each layer may import from sovkit: a prefix match on the imported module's dotted name.
ALLOWED = {
    "config": ("sovkit.config",),
    "render": ("sovkit.config", "sovkit.render"),
}
# Third-party packages that make a module an adapter: the deploy engines and process runners.
ADAPTER_ONLY = ("pulumi", "pulumi_command", "pulumi_kubernetes", "pulumi_openstack", "pulumi_random", "ansible",
                "testinfra", "subprocess", "click", "rich")
# Adapters that drive podman hosts import no other adapter: the lab knows nothing of bundles, sites or Pulumi.
HOSTS_MAY_NOT_IMPORT = ("sovkit.bundle", "sovkit.infra", "sovkit.local", "sovkit.rehearse", "sovkit.cli",
                        "sovkit.verify", "sovkit.converge", "sovkit.serving")


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "compliance" not in p.relative_to(PACKAGE).parts)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


LAYERED = [p for p in modules() if layer(p) in ALLOWED]


@pytest.mark.parametrize("path", LAYERED, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_config_and_renderers_import_nothing_above_them(path: Path) -> None:
    allowed = ALLOWED[layer(path)]
    names = imported(path)
    upward = sorted(n for n in names if n.startswith("sovkit.") and n not in BASE
                    and not any(n == a or n.startswith(a + ".") for a in allowed)
                    and not any(n.startswith(b + ".") for b in BASE - {"sovkit"}))
    engines = sorted(n for n in names if n.split(".")[0] in ADAPTER_ONLY)
    assert not upward, f"{path.name} imports {upward}: {layer(path)} may import only {allowed} and the base modules"
    assert not engines, f"{path.name} imports {engines}: only adapters drive Pulumi, Ansible or processes"


@pytest.mark.parametrize("path", sorted((PACKAGE / "hosts").glob("*.py")), ids=lambda p: p.name)
def test_the_podman_lab_imports_no_other_adapter(path: Path) -> None:
    bad = sorted(n for n in imported(path) if n.startswith(HOSTS_MAY_NOT_IMPORT))
    assert not bad, f"sovkit/hosts/{path.name} imports {bad}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "compliance").glob("*.py")), ids=lambda p: p.name)
def test_the_compliance_suite_stands_alone(path: Path) -> None:
    """Users run the suite against their hosts with pytest and testinfra alone; it imports nothing of sovkit."""
    assert not [n for n in imported(path) if n == "sovkit" or n.startswith("sovkit.")]


def test_the_guard_sees_an_upward_import(tmp_path: Path) -> None:
    """The parser finds the kind of import the guard exists to refuse."""
    sample = tmp_path / "sample.py"
    sample.write_text("from sovkit.serving.chart import template\nimport pulumi\n")
    assert {"sovkit.serving.chart", "pulumi"} <= imported(sample)
