"""Gateway vs direct load for bench_up.py: the same completions through the gateway (TLS, tenant key, router,
rate limit, JSON log) and directly to vLLM on the serving host's localhost, at concurrency 1 and 16.

The load generator is wrk (C, one epoll thread), run from this machine inside the serving host's network
namespace (`nsenter --net`), so it reaches vLLM's localhost port without installing anything on the host.
Its own CPU per request is a few microseconds, alike on both sides; a Python client spent ~170 us more per
request on TLS than on plain HTTP, on the same two cores as vLLM, and that counted against the gateway.

vLLM on CPU swings by a factor of two from one second to the next on two cores (its engine and worker
spin-wait on each other), so the figures come from many short pairs, back to back (direct first in one pair,
gateway first in the next), each pair's ratio taken alone, and the median over the pairs reported. Beside
them, the CPU each request costs in the gateway's and the model server's systemd units, read from /proc: on
a host whose cores vLLM saturates, the gateway's share of that CPU is the throughput it costs, whatever the
jitter.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = os.getenv("SOVKIT_LOAD_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SOVKIT_LOAD_KEY")
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextmanager
def wrk_script() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sovkit-load-") as folder:
        path = Path(folder) / "completion.lua"
        path.write_text(WRK_SCRIPT)
        yield path


def unit_cpu_seconds(container_id: str, units: tuple[str, ...]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each systemd unit of the container, from /proc."""
    used = dict.fromkeys(units, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroup = (entry / "cgroup").read_text()
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        if container_id not in cgroup:
            continue
        unit = next((u for u in units if f"/{u}\n" in cgroup), None)
        if unit:
            fields = stat.rsplit(")", 1)[1].split()
            used[unit] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return used


class Load:
    """wrk against one URL in the serving host's network namespace."""

    def __init__(self, netns_pid: int, script: Path, body: str) -> None:
        self.netns_pid, self.script, self.body = netns_pid, script, body

    def __call__(self, url: str, key: str, concurrency: int, seconds: float) -> dict:
        # The key and body travel in the environment, never in an argument list that `ps` would show.
        proc = subprocess.run(
            ["nsenter", f"--target={self.netns_pid}", "--net", "wrk", "--threads=1",
             f"--connections={concurrency}", f"--duration={seconds}s", "--timeout=60s",
             f"--script={self.script}", url],
            env={**os.environ, "SOVKIT_LOAD_KEY": key, "SOVKIT_LOAD_BODY": self.body},
            capture_output=True, text=True, timeout=seconds + 120, check=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        return {"requests": result["requests"], "failures": result["errors"],
                "p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000,
                "throughput_rps": result["requests"] / (result["duration_us"] / 1e6)}


def measure(load: Load, sides: dict[str, tuple[str, str]], concurrency: int, seconds: float, pairs: int,
            cpu: tuple[str, dict[str, str]]) -> dict:
    """`pairs` direct/gateway pairs at `concurrency`; each side's medians and CPU per request by unit, and
    the medians of the pairs' gateway p50 overhead and throughput ratio.

    sides: {"direct": (url, key), "gateway": (url, key)}; cpu: (container id, {label: systemd unit}).
    """
    container_id, units = cpu
    for url, key in sides.values():  # warm-up: connections, TLS sessions, caches
        load(url, key, concurrency, seconds)
    runs: dict[str, list[dict]] = {"direct": [], "gateway": []}
    used = {side: dict.fromkeys(units, 0.0) for side in runs}
    for pair in range(pairs):
        order = list(sides.items())
        for side, (url, key) in order if pair % 2 == 0 else reversed(order):  # ABBA: drift falls on both
            before = unit_cpu_seconds(container_id, tuple(units.values()))
            runs[side].append(load(url, key, concurrency, seconds))
            after = unit_cpu_seconds(container_id, tuple(units.values()))
            for label, unit in units.items():
                used[side][label] += after[unit] - before[unit]
    out: dict = {side: {figure: statistics.median(r[figure] for r in results)
                        for figure in ("p50_ms", "p99_ms", "throughput_rps")}
                 | {"requests": sum(r["requests"] for r in results),
                    "failures": sum(r["failures"] for r in results)}
                 for side, results in runs.items()}
    matched = list(zip(runs["direct"], runs["gateway"], strict=True))
    out["paired"] = {"p50_overhead_ms": statistics.median(g["p50_ms"] - d["p50_ms"] for d, g in matched),
                     "throughput_ratio": statistics.median(g["throughput_rps"] / d["throughput_rps"]
                                                           for d, g in matched),
                     "pairs": pairs}
    for side in runs:
        out[side]["cpu_us_per_request"] = {label: seconds_used / out[side]["requests"] * 1e6
                                           for label, seconds_used in used[side].items()}
    return out
