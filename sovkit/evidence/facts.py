"""What an evidence pack records beside the reports: the run's metadata, the digests of what the site was built
from, and the host facts the checks read. Each is read from where it already lives (the stack, the workspace, the
runtime lock, report.json); nothing here decides anything.
"""

from __future__ import annotations

import datetime as dt
import getpass
import platform
import socket
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sovkit.bundle.manifest import MANIFEST, sha256_of
from sovkit.config import SiteConfig, runtime
from sovkit.verify.runner import kit_commit, kit_version
from sovkit.workspace import SiteWorkspace

# The distributions whose versions decide what `sovkit verify` checked and how.
RECORDED_TOOLS = ("ansible", "ansible-core", "pytest", "pytest-testinfra")


def tool_versions(report: dict[str, Any]) -> dict[str, str]:
    """sovkit as the verify run recorded it, then this machine's Python and tools."""
    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    kit = report.get("kit") or {}
    return {"sovkit": f"{kit.get('version', kit_version())} ({kit.get('commit', kit_commit())})",
            "python": platform.python_version(), **{name: installed(name) for name in RECORDED_TOOLS}}


def time_source(site: SiteConfig) -> dict[str, Any]:
    """The clock the times of the run were read from, and the site's NTP servers that discipline the hosts'."""
    return {"clock": f"system clock of {socket.gethostname()} (UTC)",
            "site_ntp_servers": [str(server) for server in site.residency.ntp_servers]}


def operator(site: SiteConfig) -> dict[str, str]:
    return {"name": site.site.operator_name, "email": str(site.site.operator_email), "local_user": getpass.getuser()}


def input_digests(site: SiteConfig) -> dict[str, dict[str, str]]:
    """{what: {path, sha256}} of the stack file, the bundle manifest (if the site has a bundle) and the runtime
    lock its hosts install (hosts mode)."""
    inputs: dict[str, Path] = {}
    if Path(site.source).is_file():  # a site read from `pulumi config` has no file of its own
        inputs["stack"] = Path(site.source)
    manifest = SiteWorkspace.of(site.name).bundle / MANIFEST
    if manifest.is_file():
        inputs["bundle_manifest"] = manifest
    lock = runtime.lock_path(site.accelerator.accelerator)
    if site.platform.mode == "hosts" and lock.is_file():
        inputs["runtime_lock"] = lock
    return {what: {"path": str(path), "sha256": sha256_of(path)} for what, path in inputs.items()}


def run_metadata(site: SiteConfig, report: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The pack's run.json: which verify run, packed when and by whom, with which tools, from which inputs."""
    return {"site": site.name, "verify_started": report.get("started", ""),
            "packed_at": now.isoformat(timespec="seconds"), "tools": tool_versions(report),
            "time_source": time_source(site), "operator": operator(site), "inputs": input_digests(site)}


def host_facts(report: dict[str, Any]) -> dict[str, dict[str, dict[str, list[str]]]]:
    """{host: {control: {check: [evidence lines]}}}: what each check read on its host, as report.json records it."""
    return {host: {control: {check["name"]: check["evidence"] for check in entry["checks"] if check["evidence"]}
                   for control, entry in controls.items()}
            for host, controls in report.get("results", {}).items()}
