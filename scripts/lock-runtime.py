#!/usr/bin/env python3
"""Write a vendor's hosts-mode serving-runtime lock, sovkit/data/runtime/<vendor>.txt: every package the runtime
needs, pinned, with the sha256 of the wheel a Debian 12 host (CPython 3.11, x86_64) installs. pip itself resolves
it (`pip install --dry-run --report`, no configuration files: PyPI, and what the extra arguments add) from the
vendor's data file (sovkit/data/vendors/<vendor>.yaml: runtime.requirements, less runtime.without).

    .venv/bin/python scripts/lock-runtime.py nvidia
    .venv/bin/python scripts/lock-runtime.py cpu --keep -- --find-links /opt/wheels
    .venv/bin/python scripts/lock-runtime.py model-verifier

`model-verifier` writes the lock of the kubernetes weights verifier's image instead
(sovkit/data/images/model-verifier/requirements.txt): the same verifier packages the runtime locks carry, plus
the pip that installs them inside the image build (from its own wheel, so the base image needs no pip).

--keep holds every version the current lock pins (it only refreshes the hashes); arguments after -- go to pip.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from sovkit.config.runtime import Lock, lock_path, normalise, weights_verifier_pins
from sovkit.config.vendors import vendor
from sovkit.models.verifier_image import LOCK as VERIFIER_LOCK
from sovkit.models.verifier_image import PIP as VERIFIER_PIP

TARGET = "CPython 3.11 on Debian 12, x86_64"


def resolve(requirements: list[str], constraints: list[str], pip_args: list[str]) -> list[dict]:
    """pip's resolution: one entry per package, with its name, version and the chosen wheel's sha256."""
    with tempfile.TemporaryDirectory() as tmp:
        report, pinned = Path(tmp) / "report.json", Path(tmp) / "constraints.txt"
        pinned.write_text("\n".join(constraints) + "\n")
        command = [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed",
                   "--only-binary=:all:", "--quiet", "--report", str(report), "--constraint", str(pinned),
                   *pip_args, *requirements]
        subprocess.run(command, check=True)
        return json.loads(report.read_text())["install"]


def lock_text(name: str, requirements: list[str], entries: list[dict], without: set[str],
              header: list[str] | None = None) -> str:
    lines = []
    for entry in sorted(entries, key=lambda e: normalise(e["metadata"]["name"])):
        package, version = entry["metadata"]["name"], entry["metadata"]["version"]
        if normalise(package) in without:
            continue
        digest = entry["download_info"]["archive_info"]["hashes"]["sha256"]
        lines.append(f"{package}=={version} --hash=sha256:{digest}")
    header = header or [
        f"# The hosts-mode serving runtime for accelerator {name}: {', '.join(requirements)}, resolved by",
        f"# scripts/lock-runtime.py for {TARGET}. Every package is pinned with its wheel's sha256 and",
        "# installed with --no-deps --require-hashes, so this list is the whole runtime; `sovkit bundle`",
        "# downloads exactly these wheels."]
    return "\n".join(header + lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vendor")
    parser.add_argument("--keep", action="store_true", help="hold the versions the current lock pins")
    argv = sys.argv[1:]
    pip_args = argv[argv.index("--") + 1:] if "--" in argv else []  # after --: for pip (e.g. --find-links DIR)
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if args.vendor == "model-verifier":
        return lock_verifier(args.keep, pip_args)
    known = vendor(args.vendor)
    if not known.runtime_requirements:
        print(f"sovkit/data/vendors/{args.vendor}.yaml names no runtime.requirements", file=sys.stderr)
        return 2
    path = lock_path(args.vendor)
    constraints = [f"{p}=={v}" for p, v in Lock.read(path).pins.items()] if args.keep and path.is_file() else []
    # the hosts-mode GPU exporter and the weights verifier run from the same venv: what they import is locked too
    requirements = [*known.runtime_requirements, *known.metrics_exporter_requires, *weights_verifier_pins()]
    entries = resolve(requirements, constraints, pip_args)
    path.write_text(lock_text(args.vendor, requirements, entries, {normalise(p) for p in known.runtime_without}))
    print(f"{path}: {len(Lock.read(path).pins)} packages")
    return 0


def lock_verifier(keep: bool, pip_args: list[str]) -> int:
    """The weights verifier image's lock: the verifier's packages at the kit's pins, and pip to install them."""
    requirements = [*weights_verifier_pins(), VERIFIER_PIP]
    held = keep and VERIFIER_LOCK.is_file()
    constraints = [f"{p}=={v}" for p, v in Lock.read(VERIFIER_LOCK).pins.items()] if held else []
    header = [f"# sovkit's weights verifier image (kubernetes mode): {', '.join(requirements)},",
              f"# resolved by scripts/lock-runtime.py model-verifier for {TARGET}.",
              "# Every package is pinned with its wheel's sha256; the image build installs them with --no-index",
              "# --no-deps --require-hashes from the wheels beside this file (`sovkit bundle` downloads these),",
              "# so this list is the whole verifier."]
    VERIFIER_LOCK.write_text(lock_text("model-verifier", requirements, resolve(requirements, constraints, pip_args),
                                       set(), header))
    print(f"{VERIFIER_LOCK}: {len(Lock.read(VERIFIER_LOCK).pins)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
