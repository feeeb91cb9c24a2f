"""The evidence pack of a site's latest verify run: `sovkit evidence STACK` and `sovkit evidence verify` as an
auditor runs them (process start included), the pack's size and what is in it. Needs a verify run of the site
(`make run` leaves one for `local`).

    .venv/bin/python bench/bench_evidence.py [STACK]

Targets on 2 cores: the pack made in under 10 s and verified in under 5 s. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sovkit.config import load_stack  # noqa: E402 - after the path set-up, so the bench runs from a checkout
from sovkit.stacks import find_stack  # noqa: E402
from sovkit.workspace import SiteWorkspace  # noqa: E402

PACK_TARGET_S, VERIFY_TARGET_S = 10.0, 5.0


def timed(*args: str) -> float:
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "sovkit", *args], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    if run.returncode != 0:
        raise SystemExit(f"sovkit {' '.join(args)} failed:\n{run.stdout}{run.stderr}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", default="local")
    args = parser.parse_args()
    site = load_stack(find_stack(args.stack))
    workspace = SiteWorkspace.of(site.name, ROOT)
    if not (workspace.compliance / "report.json").is_file():
        raise SystemExit(f"{workspace.compliance}: no verify run of {site.name} (run `make run` or sovkit verify)")
    with tempfile.TemporaryDirectory() as out:
        pack_s = timed("evidence", args.stack, "--output", out)
        [pack] = Path(out).glob("*.tar.gz")
        verify_s = timed("evidence", "verify", str(pack), "--public-key",
                         str(workspace.evidence_key / "public.pem"))
        with tarfile.open(pack) as archive:
            members = [m for m in archive.getmembers() if m.isfile()]
        unpacked = sum(m.size for m in members)
        print(f"{site.name}: pack {pack.stat().st_size / 1024:.0f} KiB ({len(members)} files, "
              f"{unpacked / 1024:.0f} KiB unpacked)")
    print(f"  sovkit evidence {args.stack}: {pack_s:.2f} s (target < {PACK_TARGET_S:.0f} s)")
    print(f"  sovkit evidence verify: {verify_s:.2f} s (target < {VERIFY_TARGET_S:.0f} s)")
    return 0 if pack_s < PACK_TARGET_S and verify_s < VERIFY_TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
