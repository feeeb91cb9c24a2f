"""Every shipped stack, run once per test session through the Pulumi program under Pulumi's mocks.

Each stacks/Pulumi.<site>.yaml is fed to the program through PULUMI_CONFIG exactly as the engine hands it
over (see sovkit/infra/testing.py). Kubernetes stacks install the serving chart with the values of
`sovkit.render.values.render_values`, the function behind `sovkit values STACK`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import yaml

from sovkit.config import SiteConfig, load_stack
from sovkit.infra.program import build, export
from sovkit.infra.pulumi_config import site_from_pulumi
from sovkit.infra.testing import ROOT, Run, run_program, stack_names

STACKS = stack_names()


@dataclass
class StackRun:
    name: str
    site: SiteConfig
    run: Run


def program_body(extra=None):
    """The program as stacks/__main__.py runs it, plus `extra(program)` (crafted resources) afterwards."""

    def body():
        site = site_from_pulumi()
        program = build(site, root=ROOT)
        export(program)
        if extra is not None:
            extra(program)
        return program

    return body


_RUNS: dict[str, StackRun] = {}


def stack_run(name: str) -> StackRun:
    if name not in _RUNS:
        site = load_stack(ROOT / "stacks" / f"Pulumi.{name}.yaml")
        _RUNS[name] = StackRun(name, site, run_program(name, program_body()))
    return _RUNS[name]


@pytest.fixture(params=STACKS)
def shipped(request) -> StackRun:
    return stack_run(request.param)


def _stacks_where(test) -> list[str]:
    return [s for s in STACKS if test(load_stack(ROOT / "stacks" / f"Pulumi.{s}.yaml"))]


@pytest.fixture(params=_stacks_where(lambda site: site.platform.mode == "kubernetes"))
def kubernetes_stack(request) -> StackRun:
    return stack_run(request.param)


@pytest.fixture(params=_stacks_where(lambda site: site.platform.mode == "hosts"))
def hosts_stack(request) -> StackRun:
    return stack_run(request.param)


@pytest.fixture(params=_stacks_where(lambda site: site.infrastructure.provider == "openstack"))
def openstack_stack(request) -> StackRun:
    return stack_run(request.param)


@pytest.fixture(params=_stacks_where(lambda site: site.infrastructure.provider != "openstack"))
def existing_hosts_stack(request) -> StackRun:
    return stack_run(request.param)


@pytest.fixture
def body_with():
    """program_body: the shipped program plus crafted resources, for the residency tests."""
    return program_body


@pytest.fixture
def run_of():
    """stack_run: the one run of a shipped stack this session, by name."""
    return stack_run



_PRINTED: dict[str, dict] = {}


def values_printed(stack: str) -> dict:
    """What `sovkit values STACK` prints, parsed: the one source the serving release's values must equal."""
    if stack not in _PRINTED:
        from click.testing import CliRunner

        from sovkit.cli import main

        result = CliRunner().invoke(main, ["values", str(ROOT / "stacks" / f"Pulumi.{stack}.yaml")])
        assert result.exit_code == 0, result.output
        _PRINTED[stack] = yaml.safe_load(result.stdout)
    return _PRINTED[stack]


@pytest.fixture
def sovkit_values():
    return values_printed

