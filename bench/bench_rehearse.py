"""Rehearse every shipped site (but `local`, whose rehearsal is `sovkit up`, timed by bench_up.py) and print, per
site: hosts, converge time, re-run time (changed hosts), verify time and the verdict. Needs root and podman.

    .venv/bin/python bench/bench_rehearse.py [SITE ...] [--keep]

Targets on 2 cores: every site converges and verifies; the warm re-run of the largest site (most hosts) takes
under 3 minutes. Exits 1 when a target is missed. Takes each site down after it unless --keep.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sovkit.config import load_stack  # noqa: E402 - after the path set-up, so the bench runs from a checkout
from sovkit.stacks import stack_files  # noqa: E402
from sovkit.workspace import SiteWorkspace  # noqa: E402

WARM_TARGET_S = 180.0


def rehearse(site: str, *extra: str) -> tuple[int, float, dict]:
    record_file = SiteWorkspace.of(site, ROOT).rehearsal / "record.json"
    record_file.unlink(missing_ok=True)  # a record of an earlier run proves nothing about this one
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sovkit", "rehearse", site, *extra], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    seconds = time.monotonic() - started
    if proc.returncode not in (0, 1) or not record_file.exists():
        print(f"sovkit rehearse {site} could not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}", flush=True)
        return proc.returncode or 2, seconds, {"changed": {"?": -1}, "seconds": {}, "compliant": False}
    return proc.returncode, seconds, json.loads(record_file.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sites", nargs="*", help="sites to rehearse (default: every shipped site but local)")
    parser.add_argument("--keep", action="store_true", help="leave each rehearsal up")
    args = parser.parse_args()
    shipped = {s.name: s for s in (load_stack(p) for p in stack_files(ROOT)) if s.infrastructure.provider != "local"}
    names = args.sites or sorted(shipped, key=lambda n: len(shipped[n].nodes))
    rows, ok = [], True
    for name in names:
        print(f"rehearsing {name} ({len(shipped[name].nodes)} hosts) ...", flush=True)
        code, cold, first = rehearse(name)
        warm_code, warm, second = rehearse(name)
        if not args.keep:
            subprocess.run([sys.executable, "-m", "sovkit", "rehearse", name, "--down"], cwd=ROOT, check=False,
                           capture_output=True)
        changed = sum(second["changed"].values())
        verdict = "ok" if code == warm_code == 0 and changed == 0 else "FAILED"
        ok &= verdict == "ok"
        print(f"  {name}: cold {cold:.1f} s, re-run {warm:.1f} s, changed {changed}, {verdict}", flush=True)
        rows.append((name, len(shipped[name].nodes), cold, first["seconds"].get("converge", 0.0), warm,
                     second["seconds"].get("converge", 0.0), changed, second["seconds"].get("verify", 0.0),
                     second["verdict"], verdict))
    print(f"\n{'site':<20}{'hosts':>6}{'cold s':>9}{'converge':>10}{'re-run s':>10}{'converge':>10}{'changed':>9}"
          f"{'verify s':>10}  {'compliance':<20} verdict")
    for name, hosts, cold, converge, warm, reconverge, changed, verify, compliance, verdict in rows:
        print(f"{name:<20}{hosts:>6}{cold:>9.1f}{converge:>10.1f}{warm:>10.1f}{reconverge:>10.1f}{changed:>9}"
              f"{verify:>10.1f}  {compliance:<20} {verdict}")
    largest = max(rows, key=lambda r: r[1]) if rows else None
    if largest:
        met = largest[4] < WARM_TARGET_S
        ok &= met
        print(f"\nwarm re-run of the largest site ({largest[0]}, {largest[1]} hosts): {largest[4]:.1f} s "
              f"(target < {WARM_TARGET_S:.0f} s): {'met' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
