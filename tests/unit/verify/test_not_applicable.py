"""A check skipped through the suite's not_applicable() is recorded as not applying to its host, a plain skip as
unproven: the real runner, plugin and suite helper on a suite of two checks (no host needed)."""

from __future__ import annotations

import os
from pathlib import Path

from sovkit.verify.runner import KIT_ROOT, _run_host

SUITE = '''
import pytest

from sovkit.compliance.conftest import not_applicable


@pytest.mark.control("SOV-GW-001")
def test_gateway():
    not_applicable("no gateway runs on this host")


@pytest.mark.control("SOV-AUD-002")
def test_auditd():
    pytest.skip("container host: auditd cannot talk to the kernel audit socket from a container")
'''


def test_not_applicable_skips_are_recorded_apart_from_unproven_ones(tmp_path: Path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('def pytest_configure(config):\n'
                                       '    config.addinivalue_line("markers", "control(id): a control")\n')
    (suite / "test_two.py").write_text(SUITE)
    env = {**os.environ, "PYTHONPATH": str(KIT_ROOT)}
    run = _run_host("serving-1", tmp_path / "inventory.yml", tmp_path / "out", env, suite, [], timeout_s=120)
    assert not run.broken, run.output
    found = {r.control: (r.outcome, r.applicable, r.message) for r in run.results}
    assert found == {
        "SOV-GW-001": ("skipped", False, "not applicable: no gateway runs on this host"),
        "SOV-AUD-002": ("skipped", True, "container host: auditd cannot talk to the kernel audit socket from a "
                                         "container"),
    }
