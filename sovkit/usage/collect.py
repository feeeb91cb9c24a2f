"""The gateways' access logs, read on each serving host over the connection the compliance suite uses (podman
for `local`, ssh with sudo otherwise): only the files that may hold the period's lines."""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Iterator

import testinfra

from sovkit.compliance.conftest import host_url, inventory_hosts
from sovkit.render.gateway import ACCESS_LOG_DIR
from sovkit.usage.budget_keeper import may_hold


class UsageReadError(RuntimeError):
    """A gateway's log could not be read: the usage of the period would be incomplete."""


def gateway_log_lines(inventory: dict, first: dt.date) -> Iterator[tuple[str, list[str]]]:
    """(host, its log lines from the files that may hold `first` and later) for every serving host."""
    hosts = inventory_hosts(inventory)
    for name in sorted(n for n, hvars in hosts.items() if "serving" in hvars["group_names"]):
        host = testinfra.get_host(host_url(hosts[name]))
        listing = host.run("ls -1 -- %s", ACCESS_LOG_DIR)
        if listing.rc != 0:
            raise UsageReadError(f"{name}: cannot list {ACCESS_LOG_DIR}: {listing.stderr.strip()[-300:]}")
        files = [f"{ACCESS_LOG_DIR}/{f}" for f in sorted(listing.stdout.split()) if may_hold(f, first)]
        if not files:
            yield name, []
            continue
        read = host.run("zcat -f -- " + " ".join(shlex.quote(f) for f in files))
        if read.rc != 0:
            raise UsageReadError(f"{name}: cannot read its access logs: {read.stderr.strip()[-300:]}")
        yield name, read.stdout.splitlines()
