"""Time the hardening of fresh local hosts and `sovkit verify` of them (needs root, podman, mmdebstrap).

On the kit's `local` stack with three nodes (one control plane, two CPU workers), each a fresh
Debian 12 host under podman with systemd whose only package source is the stack's mirror:

1. converge of all hardening roles (playbooks/harden.yml) on ONE fresh host   target <= 90 s
2. the idempotent re-run on it, changed=0                                      target <= 30 s
3. `sovkit verify` of that one host (process start included)                  target <= 15 s
4. `sovkit verify` of all three hosts, in parallel (the other two converged first, untimed)
                                                                                target <= 25 s
5. the auditors' scanner: Lynis's hardening index of an untouched host and of a hardened one, side by side
   (Lynis is copied in from this machine's Debian package `lynis`; its score is printed, not held to a target)

The image and the local apt repository are built once and cached (~/.cache/sovkit/hosts); their
build is not timed. Holds the lab lock, so it waits for a test session using the machine.

Run: .venv/bin/python bench/bench_harden.py   (apt-get install lynis first for step 5)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "roles"))

from harden_lab import converge, local_stack, stack_inventory, start_hosts  # noqa: E402 - after the path insert

from sovkit.hosts import Lab, Podman, default_cache_dir, ensure_apt_repo, ensure_image  # noqa: E402

TARGETS = {"converge": 90.0, "re-run": 30.0, "verify 1 host": 15.0, "verify 3 hosts": 25.0}


def verify(stack: Path, out: Path, podman: Podman, hosts: list[str]) -> tuple[float, int, str]:
    argv = [sys.executable, "-m", "sovkit.verify.cli", str(stack), "-o", str(out), "--jobs", "3"]
    for host in hosts:
        argv += ["--host", host]
    started = time.monotonic()
    proc = subprocess.run(argv, env=podman.env(), capture_output=True, text=True, check=False, cwd=ROOT)
    return time.monotonic() - started, proc.returncode, proc.stderr


LYNIS_FILES = ("/usr/sbin/lynis", "/usr/share/lynis", "/etc/lynis")  # Debian's package: shell, nothing to build


def lynis(podman: Podman, host: str) -> tuple[int, int, int]:
    """Lynis's hardening index of `host`, with its warning and suggestion counts (from its report file)."""
    for path in LYNIS_FILES:
        podman("cp", path, f"{host}:{path}")
    podman.exec(host, ["lynis", "audit", "system", "--quick", "--no-colors", "--noplugins"], check=False)
    lines = podman.exec(host, ["cat", "/var/log/lynis-report.dat"]).splitlines()
    report = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return (int(report["hardening_index"]), sum(line.startswith("warning[]=") for line in lines),
            sum(line.startswith("suggestion[]=") for line in lines))


def main() -> int:
    podman = Podman(default_cache_dir() / "podman")
    image = ensure_image(podman)
    repo = ensure_apt_repo(image)
    figures: dict[str, float] = {}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sovkit-bench-") as tmp, Lab("sovkit-bench", podman=podman) as lab:
        work = Path(tmp)
        stack = local_stack(work, cpu_workers=2)
        site, inv = stack_inventory(stack)
        hosts = start_hosts(lab, image.tag, repo, site)
        first, others = hosts[0], hosts[1:]
        scores: dict[str, tuple[int, int, int]] = {}
        if shutil.which("lynis"):
            scores["untouched"] = lynis(podman, others[0])

        run = converge(podman, inv, work, "--limit", first)
        figures["converge"] = run.seconds
        if run.returncode != 0:
            print(run.output[-4000:])
            problems.append("converge failed")
        run = converge(podman, inv, work, "--limit", first)
        figures["re-run"] = run.seconds
        if run.returncode != 0 or run.changed != {first: 0}:
            problems.append(f"re-run not idempotent: changed={run.changed}")
        seconds, rc, err = verify(stack, work / "one", podman, [first])
        figures["verify 1 host"] = seconds
        if rc != 0:
            problems.append(f"verify of 1 host exited {rc}:\n{err[-2000:]}")

        run = converge(podman, inv, work, "--limit", ",".join(others))
        if run.returncode != 0:
            problems.append("converge of the other two hosts failed")
        seconds, rc, err = verify(stack, work / "three", podman, [])
        figures["verify 3 hosts"] = seconds
        if rc != 0:
            problems.append(f"verify of 3 hosts exited {rc}:\n{err[-2000:]}")
        if shutil.which("lynis"):
            scores["hardened"] = lynis(podman, first)
        restored = lab.close()

    print("sovkit hardening bench (local stack, fresh Debian 12 podman hosts, 2 cores):")
    for name, target in TARGETS.items():
        value = figures.get(name)
        mark = "ok  " if value is not None and value <= target else "OVER"
        print(f"  {mark} {name:<16} {value if value is not None else float('nan'):6.1f} s   target <= {target:.0f} s")
    if scores:
        print("  Lynis (container host; the kernel-level tests see the machine's kernel):")
        for name, (index, warnings, suggestions) in scores.items():
            print(f"       {name:<10} hardening index {index:3d}   warnings {warnings:2d}   "
                  f"suggestions {suggestions:3d}")
    else:
        print("  Lynis: not installed on this machine (apt-get install lynis): no scanner figures")
    print(f"  machine settings restored: {', '.join(restored) or 'nothing to restore'}")
    for problem in problems:
        print(f"  FAIL: {problem}")
    over = [n for n, t in TARGETS.items() if figures.get(n, float("inf")) > t]
    return 1 if problems or over else 0


if __name__ == "__main__":
    sys.exit(main())
