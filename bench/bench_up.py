"""Time `sovkit up --stack local` cold (host image cached, no site running) and warm (a re-run), then the
gateway's cost: p50/p99 latency and throughput through the gateway and directly to vLLM, at concurrency 1 and
16, in the same run, measured from inside the serving host (vLLM listens on its localhost only).

    .venv/bin/python bench/bench_up.py [--requests N] [--max-tokens N] [--rounds N] [--keep] [--load-only]

Targets: cold <= 480 s, warm <= 90 s, gateway p50 overhead <= 2 ms, throughput >= 95 % of direct.
Exits 1 when a target is missed. Leaves the site down unless --keep.
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

from sovkit import ports  # noqa: E402 - after the path set-up, so the bench runs from a checkout
from sovkit.config import load_stack  # noqa: E402
from sovkit.hosts import Podman, default_cache_dir  # noqa: E402
from sovkit.local.up import LocalSite  # noqa: E402
from sovkit.serving.vllm_args import default_port  # noqa: E402

TARGETS = {"cold_s": 480.0, "warm_s": 90.0, "p50_overhead_ms": 2.0, "throughput_ratio": 0.95}


def sovkit(*args: str) -> float:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sovkit", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        sys.exit(f"sovkit {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return time.monotonic() - started


def gateway_load(requests: int, max_tokens: int, rounds: int) -> dict:
    site = load_stack(ROOT / "stacks" / "Pulumi.local.yaml")
    local = LocalSite(site)
    host = site.serving_nodes()[0]
    tenant, spec = max(site.serving.tenants.items(), key=lambda item: item[1].rate_limit.requests_per_minute)
    model = spec.models[0]
    assert spec.api_key.file
    tenant_key = Path(spec.api_key.file).read_text().strip()
    upstream_key = (local.state_dir / "secrets" / "upstream-api-key").read_text().strip()
    podman = Podman(default_cache_dir() / "podman")
    podman("cp", str(ROOT / "bench" / "gateway_load.py"), f"{host.name}:/tmp/gateway_load.py")
    port = default_port(site, model)
    # The keys travel in the environment (`--env NAME` passes the value through), never in an argument list
    # that an error message or `ps` would show.
    proc = subprocess.run(
        ["podman", "exec", "--env", "SOVKIT_TENANT_KEY", "--env", "SOVKIT_UPSTREAM_KEY", host.name, "python3",
         "/tmp/gateway_load.py", f"https://{host.address}:{ports.GATEWAY}/v1/completions",
         f"http://127.0.0.1:{port}/v1/completions", model, "/etc/sovkit/tls/site-ca.crt", str(requests),
         str(max_tokens), str(rounds)],
        env={**podman.env(), "SOVKIT_TENANT_KEY": tenant_key, "SOVKIT_UPSTREAM_KEY": upstream_key},
        capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        sys.exit(f"the load run failed:\n{proc.stderr[-4000:]}")
    print(f"gateway tenant {tenant}, model {model}, {max_tokens}-token completions, {rounds} rounds of {requests}"
          " requests a side at each concurrency (direct then gateway; medians over the rounds)", flush=True)
    return json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=320, help="requests per run (a multiple of 16)")
    parser.add_argument("--max-tokens", type=int, default=1,
                        help="tokens each completion generates (1: the gateway's fixed cost shows most)")
    parser.add_argument("--rounds", type=int, default=7, help="measured direct/gateway pairs per concurrency")
    parser.add_argument("--keep", action="store_true", help="leave the site up afterwards")
    parser.add_argument("--load-only", action="store_true", help="only the gateway figures, on the running site")
    args = parser.parse_args()

    figures: dict[str, float] = {}
    if not args.load_only:
        sovkit("down", "--stack", "local")
        figures["cold_s"] = sovkit("up", "--stack", "local")
        print(f"up cold (host image cached): {figures['cold_s']:6.1f} s   target <= {TARGETS['cold_s']:.0f} s",
              flush=True)
        figures["warm_s"] = sovkit("up", "--stack", "local")
        print(f"up warm re-run:              {figures['warm_s']:6.1f} s   target <= {TARGETS['warm_s']:.0f} s",
              flush=True)
    load = gateway_load(args.requests, args.max_tokens, args.rounds)
    print(f"{'':>16}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'fail':>6}")
    for concurrency in ("1", "16"):
        for label in ("direct", "gateway"):
            r = load[label][concurrency]
            print(f"{label:>8} c={concurrency:<4}{r['p50_ms']:9.2f}{r['p99_ms']:9.2f}{r['throughput_rps']:9.1f}"
                  f"{r['failures']:6d}")
        direct, gateway = load["direct"][concurrency], load["gateway"][concurrency]
        overhead = load["paired"][concurrency]["p50_overhead_ms"]
        ratio = load["paired"][concurrency]["throughput_ratio"]
        figures[f"p50_overhead_ms_c{concurrency}"] = overhead
        figures[f"throughput_ratio_c{concurrency}"] = ratio
        print(f"  c={concurrency}, paired medians: gateway p50 overhead {overhead:+.2f} ms "
              f"(target <= {TARGETS['p50_overhead_ms']}), throughput {ratio:.1%} of direct "
              f"(target >= {TARGETS['throughput_ratio']:.0%}), p50 ratio {gateway['p50_ms'] / direct['p50_ms']:.2f}")
    if not args.keep and not args.load_only:
        sovkit("down", "--stack", "local")
    failures = sum(load[side][c]["failures"] for side in ("direct", "gateway") for c in load[side])
    missed = [k for k in ("cold_s", "warm_s") if k in figures and figures[k] > TARGETS[k]]
    missed += [k for k in figures if k.startswith("p50_overhead") and figures[k] > TARGETS["p50_overhead_ms"]]
    missed += [k for k in figures if k.startswith("throughput_ratio") and figures[k] < TARGETS["throughput_ratio"]]
    print("PASS" if not missed and not failures else f"MISSED: {missed}, failed requests: {failures}")
    return 0 if not missed and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
