"""Time `sovkit validate` of every shipped stack, process start included (target: under 1.5 s).

Run: .venv/bin/python bench/bench_validate.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    sovkit = Path(sys.executable).with_name("sovkit")
    stacks = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(sovkit), "validate"], cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    median, worst = statistics.median(times), max(times)
    print(f"sovkit validate, {len(stacks)} stacks, {runs} runs, process start included:")
    print(f"  median {median:.3f} s   min {min(times):.3f} s   max {worst:.3f} s   target < {TARGET_S} s")
    print("  PASS" if worst < TARGET_S else "  FAIL: over target")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
