"""pytest plugin the runner loads into each per-host suite run: writes one JSON line per check.

Each record: nodeid, name, control id (from @pytest.mark.control), outcome (passed/failed/skipped),
duration, evidence (record_property("evidence", ...)), the failure text or the skip reason, and whether the check
applies to the host (false for a skip through the suite's not_applicable()).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sovkit.compliance.conftest import NOT_APPLICABLE

RESULTS_ENV = "SOVKIT_VERIFY_RESULTS"


class Recorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict] = {}
        self.controls: dict[str, str | None] = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        marker = item.get_closest_marker("control")
        self.controls[report.nodeid] = marker.args[0] if marker and marker.args else None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rec = self.records.setdefault(report.nodeid, {
            "nodeid": report.nodeid, "name": report.nodeid.split("::", 1)[-1],
            "control": self.controls.get(report.nodeid), "outcome": "passed", "duration": 0.0,
            "evidence": [], "message": "", "applicable": True,
        })
        rec["duration"] = round(rec["duration"] + report.duration, 3)
        rec["evidence"] = [str(v) for k, v in report.user_properties if k == "evidence"] or rec["evidence"]
        if report.skipped:
            rec["outcome"] = "skipped"
            longrepr = report.longrepr
            rec["message"] = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            rec["message"] = rec["message"].removeprefix("Skipped: ")
            rec["applicable"] = not rec["message"].startswith(NOT_APPLICABLE)
        elif report.failed:
            rec["outcome"] = "failed" if report.when == "call" else "error"
            rec["message"] = (report.longreprtext or "")[-1500:]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(json.dumps(r) + "\n" for r in self.records.values()))


def pytest_configure(config: pytest.Config) -> None:
    target = os.environ.get(RESULTS_ENV)
    if target:
        config.pluginmanager.register(Recorder(Path(target)), "sovkit-verify-recorder")
