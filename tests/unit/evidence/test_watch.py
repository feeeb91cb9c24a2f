"""A scheduled evidence round: the alert a regression raises (handed to a real Alertmanager by amtool, as on the
monitoring host), the baseline it keeps, and the systemd units that run it (checked by systemd-analyze)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from verify_runs import changed, local_site, results, write_run

from sovkit.cli import run
from sovkit.evidence import watch
from sovkit.evidence.diff import diff_reports
from sovkit.evidence.pack import build_pack
from sovkit.evidence.schedule import Schedule, alert_lasts, write_units
from sovkit.stacks import project_root

BROKEN = ("serving-1", "SOV-NET-003")
NOW = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)


def run_diff(tmp_path: Path, broken: bool):
    old = write_run(tmp_path / "old", results()) / "report.json"
    new_checks = changed(results(), *BROKEN, outcome="failed", message="open") if broken else results()
    new = write_run(tmp_path / "new", new_checks) / "report.json"
    return diff_reports(json.loads(old.read_text()), json.loads(new.read_text()), str(old), str(new))


def test_a_regression_fires_an_alert_naming_the_control_and_its_clause(tmp_path):
    action = watch.alert_action("local", run_diff(tmp_path, broken=True), False, "local-20261201T020000Z.tar.gz")
    assert action.firing
    assert action.summary == "local: compliance evidence got worse since local-20261201T020000Z.tar.gz"
    assert "serving-1: SOV-NET-003 newly failing (was passed)" in action.description
    assert "(cross_border_transfer): evidenced -> failed" in action.description
    assert "sovkit evidence diff" in action.description.splitlines()[-1]


def test_a_quiet_round_resolves_a_firing_alert_and_else_sends_nothing(tmp_path):
    quiet = run_diff(tmp_path, broken=False)
    assert watch.alert_action("local", quiet, was_firing=True).firing is False
    assert watch.alert_action("local", quiet, was_firing=False) is None
    assert watch.alert_action("local", None, was_firing=False) is None  # the first round: nothing to compare


def test_a_worse_run_keeps_the_baseline_and_a_better_one_replaces_it(tmp_path):
    site = local_site()
    key = tmp_path / "key"
    good = build_pack(site, write_run(tmp_path / "good", results()), tmp_path / "packs", key)
    folder = tmp_path / "watch"
    state = watch.settle(folder, good, None, watch.WatchState(), None, NOW)  # first round
    assert state.baseline == good.name and (folder / watch.BASELINE).read_bytes() == good.read_bytes()
    bad = build_pack(site, write_run(tmp_path / "bad", changed(results(), *BROKEN, outcome="failed"),
                                     started="2026-12-02T02:00:00+00:00"), tmp_path / "packs", key)
    diff = watch.compare_with_baseline(folder, bad)
    assert diff.worse
    fired = watch.alert_action("local", diff, False)
    state = watch.settle(folder, bad, diff, state, fired, NOW)
    assert state.baseline == good.name and state.firing and state.last_pack == bad.name
    assert watch.WatchState.read(folder) == state
    assert (folder / watch.BASELINE).read_bytes() == good.read_bytes()  # the next round compares with it again


def test_an_unreadable_state_is_named(tmp_path):
    (tmp_path / watch.STATE).write_text("[1, 2")
    with pytest.raises(ValueError, match=f"{tmp_path / watch.STATE}: not the watcher's state"):
        watch.WatchState.read(tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on loopback (the Debian package's), with the route of a site without receivers."""
    if not shutil.which("prometheus-alertmanager") or not shutil.which("amtool"):
        pytest.skip("Alertmanager and amtool are not installed (Debian package prometheus-alertmanager)")
    listen = f"127.0.0.1:{free_port()}"
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    server = subprocess.Popen(["prometheus-alertmanager", f"--config.file={config}", f"--web.listen-address={listen}",
                               f"--storage.path={tmp_path / 'data'}", "--cluster.listen-address="],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{listen}/-/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield listen
    finally:
        server.terminate()
        server.wait(timeout=10)


def active_alerts(listen: str) -> list[dict]:
    with urllib.request.urlopen(f"http://{listen}/api/v2/alerts?active=true", timeout=5) as answer:
        return [a for a in json.load(answer) if a["status"]["state"] == "active"]


def test_amtool_raises_and_resolves_the_regression_in_alertmanager(alertmanager, tmp_path):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    fired = watch.alert_action("local", run_diff(tmp_path, broken=True), was_firing=False)
    raised = subprocess.run(watch.amtool_command("local", fired, alertmanager, now, alert_lasts("daily")),
                            capture_output=True, text=True, timeout=30, check=False)
    assert raised.returncode == 0, raised.stderr
    [alert] = active_alerts(alertmanager)
    assert alert["labels"] == {"alertname": watch.ALERT_NAME, "site": "local", "severity": "critical"}
    assert "SOV-NET-003 newly failing" in alert["annotations"]["description"]
    assert dt.datetime.fromisoformat(alert["endsAt"]) - now == dt.timedelta(hours=49)
    resolved = watch.alert_action("local", run_diff(tmp_path / "later", broken=False), was_firing=True)
    done = subprocess.run(watch.amtool_command("local", resolved, alertmanager, now, alert_lasts("daily")),
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert active_alerts(alertmanager) == []


def test_the_timer_and_service_are_what_systemd_accepts_and_a_rerun_changes_nothing(tmp_path):
    sovkit = Path(shutil.which("sovkit") or "/usr/bin/true")
    plan = Schedule("local", "local", project_root(), sovkit, "root", "hourly", tmp_path / "id key")
    written = write_units(plan, tmp_path / "units")
    assert [(p.name, c) for p, c in written] == [("sovkit-evidence-local.service", True),
                                                  ("sovkit-evidence-local.timer", True)]
    service, timer = (p.read_text() for p, _ in written)
    assert f'ExecStart={sovkit} evidence watch local --alert-hours=3 "--identity={tmp_path}/id key"' in service
    assert "OnCalendar=hourly" in timer and "Persistent=true" in timer
    assert [c for _, c in write_units(plan, tmp_path / "units")] == [False, False]
    if shutil.which("systemd-analyze"):  # systemd's own reading of the units, not a copy of its rules
        checked = subprocess.run(["systemd-analyze", "verify", *(str(p) for p, _ in written)],
                                 capture_output=True, text=True, timeout=60, check=False)
        assert checked.returncode == 0, checked.stderr


def test_schedule_refuses_a_path_systemd_would_read_otherwise(tmp_path, capsys):
    status = run(["evidence", "schedule", "local", "--unit-dir", str(tmp_path), "--user", "ops$team"])
    assert status == 1
    assert "the user 'ops$team' holds '$'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
