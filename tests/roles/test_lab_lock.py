"""The machine-wide lab lock: a second lab (another test session, another scenario, the bench) waits
for the first instead of tearing down its networks. Real processes, a real flock; no podman needed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from sovkit.hosts import HostsError, Lab, LabLock
from sovkit.hosts import lab as lab_module

HOLD = """
import sys, time
from pathlib import Path
from sovkit.hosts import LabLock
with LabLock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_waits_for_the_first(tmp_path: Path):
    """While another process holds the lock, acquiring it blocks until that process lets go."""
    path = tmp_path / "lab.lock"
    holder = _holder(path, 1.5)
    started = time.monotonic()
    with LabLock(path) as lock:
        waited = time.monotonic() - started
        assert lock.held
        assert path.read_text().strip() == f"pid {__import__('os').getpid()}"
    holder.wait(timeout=10)
    assert waited >= 1.0, f"did not wait for the holder (waited {waited:.2f} s)"


def test_gives_up_after_timeout_naming_the_holder(tmp_path: Path):
    """A lock held too long is an error that names who holds it, not a silent hang."""
    path = tmp_path / "lab.lock"
    holder = _holder(path, 5)
    try:
        with pytest.raises(HostsError, match=rf"still held after 1 s by pid {holder.pid}"):
            LabLock(path, timeout_s=1).acquire()
    finally:
        holder.kill()
        holder.wait()


def test_lock_dies_with_its_holder(tmp_path: Path):
    """A killed session never leaves the lock held: the kernel drops a flock with its process."""
    path = tmp_path / "lab.lock"
    holder = _holder(path, 60)
    holder.kill()
    holder.wait()
    lock = LabLock(path, timeout_s=2)
    lock.acquire()
    assert lock.held
    lock.release()


def test_lab_holds_the_lock_for_its_lifetime(tmp_path: Path, monkeypatch):
    """Lab takes the lock on entry and releases it on exit (no networks, so no podman needed)."""
    path = tmp_path / "lab.lock"
    monkeypatch.setenv("SOVKIT_LAB_LOCK", str(path))

    class NoSnapshot:  # this test must not restore the machine: a real lab may be running beside it
        @classmethod
        def capture(cls):
            return cls()

        def restore(self):
            return []

    monkeypatch.setattr(lab_module, "MachineSnapshot", NoSnapshot)
    with Lab("lock-test", podman=object()) as lab:  # type: ignore[arg-type]
        assert lab.lock.held and lab.lock.path == path
        with pytest.raises(HostsError):
            LabLock(path, timeout_s=0.5).acquire()
    assert not lab.lock.held
    LabLock(path, timeout_s=0.5).acquire()
