"""The rehearsal reads Prometheus's targets as a just-started Prometheus shows them: a target not yet scraped is
"unknown", which is neither up nor down, so the check waits for every first scrape. Run against a real Prometheus
(Debian's) on loopback, queried the moment it answers, with one target that is up and one that is not."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sovkit.rehearse.checks import SERVING_CALLS, targets_problem

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="prometheus is not installed (Debian package prometheus)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prometheus(tmp_path: Path):
    port, closed = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "5s"},
        "scrape_configs": [{"job_name": "self", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
                           {"job_name": "nothing", "static_configs": [{"targets": [f"127.0.0.1:{closed}"]}]}]}))
    proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # ready as soon as its API answers: before any scrape, as after a converge's restart
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_targets_are_read_after_their_first_scrape(prometheus):
    spec = {"ca": None, "endpoint": "", "calls": [], "prometheus": prometheus, "targets_wait_s": 60}
    proc = subprocess.run([sys.executable, "-c", SERVING_CALLS, json.dumps(spec)], capture_output=True, text=True,
                          timeout=120, check=True)
    (label, targets), = json.loads(proc.stdout)
    health = {job: state for job, _, state in targets}
    assert label == "targets"
    assert health == {"self": "up", "nothing": "down"}


@pytest.mark.parametrize(("targets", "problem"), [
    ([["node", "http://a:9100/metrics", "up"]], ""),
    ([["node", "http://a:9100/metrics", "up"], ["vllm", "https://a/m", "unknown"]], "vllm https://a/m (unknown)"),
    ([], "no target at all"),
    ("connection refused", "connection refused"),
])
def test_a_target_not_up_or_no_target_fails_the_rehearsal(targets, problem):
    assert targets_problem(targets) == problem
