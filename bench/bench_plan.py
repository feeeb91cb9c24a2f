"""Time `sovkit plan` for every shipped stack, with process start: each stack in its own process, and all
stacks in one `sovkit plan STACK...` process (target: < 1.5 s).

    .venv/bin/python bench/bench_plan.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.5
# Through the main CLI once `plan` is registered there; until then through the command object itself.
VIA_MAIN = [sys.executable, "-m", "sovkit", "plan"]
VIA_COMMAND = [sys.executable, "-c", "import sys; from sovkit.serving.cli import plan; plan(sys.argv[1:])"]


def command() -> list[str]:
    probe = subprocess.run([*VIA_MAIN, "--help"], capture_output=True, cwd=ROOT, check=False)
    return VIA_MAIN if probe.returncode == 0 else VIA_COMMAND


def main() -> int:
    cmd = command()
    stacks = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))
    worst, total = 0.0, 0.0
    print(f"command: {' '.join(cmd[1:3])} ...")
    for stack in stacks:
        started = time.perf_counter()
        result = subprocess.run([*cmd, str(stack)], capture_output=True, text=True, cwd=ROOT, check=False)
        elapsed = time.perf_counter() - started
        worst, total = max(worst, elapsed), total + elapsed
        print(f"{stack.name:40} {elapsed:6.2f} s  exit {result.returncode}")
        if result.returncode != 0:
            print(result.stdout + result.stderr)
            return 1
    print(f"{len(stacks)} stacks, one process each: worst {worst:.2f} s, sum {total:.2f} s")
    started = time.perf_counter()
    result = subprocess.run([*cmd, *map(str, stacks)], capture_output=True, text=True, cwd=ROOT, check=False)
    together = time.perf_counter() - started
    verdict = "OK" if together < TARGET_S and result.returncode == 0 else "OVER TARGET"
    print(f"all {len(stacks)} stacks in one `plan` process: {together:.2f} s (target < {TARGET_S} s) {verdict}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    raise SystemExit(main())
