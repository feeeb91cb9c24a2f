"""Run the compliance suite (sovkit/compliance) against every host of a rendered inventory.

One pytest process per host, `jobs` at a time; each reads the same inventory file and reaches its
host with testinfra's podman:// (local) or ssh:// backend. Their per-check records are merged into
one :class:`~sovkit.verify.report.Report`, written as report.json, report.html and junit.xml.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sovkit.render.inventory import LOCAL_CONNECTION
from sovkit.verify.plugin import RESULTS_ENV
from sovkit.verify.report import CheckResult, Report

KIT_ROOT = Path(__file__).resolve().parents[2]
SUITE_ENV = "SOVKIT_COMPLIANCE_SUITE"
# Connections that reach a podman container on this machine (testinfra reaches those with podman://).
PODMAN_CONNECTIONS = (LOCAL_CONNECTION, "containers.podman.podman", "podman")
Wrap = Callable[[list[str]], list[str]]


def suite_path() -> Path:
    """The suite shipped in this package (sovkit/compliance), or $SOVKIT_COMPLIANCE_SUITE."""
    path = Path(os.environ.get(SUITE_ENV) or Path(__file__).resolve().parents[1] / "compliance")
    if not (path / "conftest.py").exists():
        raise FileNotFoundError(f"compliance suite not found at {path}: set {SUITE_ENV} to its directory")
    return path


def kit_commit(root: Path = KIT_ROOT) -> str:
    """The kit's git commit (read-only lookup), '+dirty' when the work tree has changes; 'unknown' outside git."""
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=False, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def kit_version() -> str:
    try:
        from importlib.metadata import version

        return version("sovkit")
    except Exception:
        return "checkout"


def inventory_hosts(inventory: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{host: its own variables}; a host listed in several groups (serving, monitored) keeps all of them."""
    hosts: dict[str, dict[str, Any]] = {}
    for body in (inventory["all"].get("children") or {}).values():
        for name, hvars in ((body or {}).get("hosts") or {}).items():
            hosts[name] = {**hosts.get(name, {}), **(hvars or {})}
    return hosts


@dataclass
class HostRun:
    host: str
    returncode: int
    results: list[CheckResult]
    output: str
    seconds: float = 0.0

    @property
    def broken(self) -> bool:
        """The suite itself could not run: pytest exit 0 = all passed, 1 = some failed (reported per
        check); anything else, or no results at all, proves nothing about the host."""
        return self.returncode not in (0, 1) or not self.results


def _run_host(host: str, inv_file: Path, out_dir: Path, env: dict[str, str], suite: Path,
              extra_args: list[str], wrap: Wrap | None = None, timeout_s: float = 1800) -> HostRun:
    results_file = out_dir / "hosts" / f"{host}.jsonl"
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pytest", str(suite), "-p", "sovkit.verify.plugin", "-p", "no:cacheprovider",
            "-q", "--rootdir", str(suite), "-o", "addopts=", "-o", "python_files=test_*.py",
            f"--junitxml={out_dir / 'hosts' / f'{host}.xml'}", *extra_args]
    argv = wrap(argv) if wrap else argv
    host_env = {**env, "SOVKIT_INVENTORY": str(inv_file), "SOVKIT_VERIFY_HOST": host, RESULTS_ENV: str(results_file)}
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, env=host_env, capture_output=True, text=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return HostRun(host, -1, [], f"the suite did not finish on {host} within {timeout_s:.0f} s",
                       time.monotonic() - started)
    results = []
    if results_file.exists():
        for line in results_file.read_text().splitlines():
            rec = json.loads(line)
            results.append(CheckResult(host=host, **rec))
    return HostRun(host, proc.returncode, results, proc.stdout[-6000:] + proc.stderr[-3000:],
                   time.monotonic() - started)


def run_verify(inventory: dict[str, Any], output_dir: str | Path, jobs: int = 4, *,
               hosts: list[str] | None = None, env: dict[str, str] | None = None,
               extra_pytest_args: list[str] | None = None,
               progress: Callable[[str, HostRun], None] | None = None, wrap: Wrap | None = None) -> Report:
    """Run the suite on each host (all, or ``hosts``) of ``inventory``, ``jobs`` in parallel; write
    report.json, report.html and junit.xml into ``output_dir`` and return the report. ``wrap`` wraps each suite's
    command line (a rehearsal runs it from inside its lab, as the site's admin machine)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    inv_file = out / "inventory.yml"
    inv_file.write_text(yaml.safe_dump(inventory, sort_keys=True))
    all_hosts = inventory_hosts(inventory)
    selected = hosts or sorted(all_hosts)
    unknown = [h for h in selected if h not in all_hosts]
    if unknown:
        raise ValueError(f"hosts not in the inventory: {', '.join(unknown)} (known: {', '.join(sorted(all_hosts))})")
    suite = suite_path()
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    run_env = {**os.environ, **(env or {})}
    runs: list[HostRun] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(_run_host, h, inv_file, out, run_env, suite, list(extra_pytest_args or []), wrap)
                   for h in selected]
        for fut in as_completed(futures):
            run = fut.result()
            runs.append(run)
            if progress:
                progress(run.host, run)
    top = inventory["all"].get("vars") or {}
    profile = top.get("sovkit_profile") or {}
    site = top.get("sovkit_site") or {}
    report = Report(
        site=site.get("name", "unknown"),
        profile=site.get("profile", ""),
        law=profile.get("law", ""),
        clauses=dict(profile.get("clauses") or {}),
        results=[r for run in sorted(runs, key=lambda r: r.host) for r in run.results],
        started=started.isoformat(timespec="seconds"),
        duration_s=time.monotonic() - t0,
        kit_version=kit_version(),
        kit_commit=kit_commit(),
        hosts={h: _reach(all_hosts[h]) for h in selected},
        host_errors={run.host: run.output for run in runs if run.broken},
    )
    report.write_json(out / "report.json")
    report.write_html(out / "report.html")
    report.write_junit(out / "junit.xml")
    return report


def _reach(hvars: dict[str, Any]) -> str:
    if hvars.get("ansible_connection") in PODMAN_CONNECTIONS:
        return f"podman://{hvars.get('ansible_host')}"
    return f"ssh://{hvars.get('ansible_user', 'root')}@{hvars.get('ansible_host')}:{hvars.get('ansible_port', 22)}"
