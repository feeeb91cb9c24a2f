"""Time `sovkit up --stack local` cold (host image cached, no site running) and warm (a re-run), then the
gateway's cost: p50/p99 latency and throughput through the gateway and directly to vLLM, at concurrency 1 and
16, in the same run, with wrk inside the serving host's network (vLLM listens on its localhost only; see
gateway_load.py). Needs root (podman, nsenter) and wrk: scripts/bench-deps.sh installs it, pinned.

    .venv/bin/python bench/bench_up.py [--seconds S] [--pairs N] [--max-tokens N] [--keep] [--load-only]

Targets: cold <= 480 s, warm <= 90 s, gateway p50 overhead <= 2 ms, and the gateway's CPU per request at most 5 %
of the model server's behind it. Throughput ratios are printed, not held to a target: on two shared cores they
measure the CPU backend's scheduling, not the gateway. Exits 1 when a target is missed. Leaves the site down
unless --keep.
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

from gateway_load import Load, measure, wrk_script  # noqa: E402 - bench/ is the script's folder

from sovkit import ports  # noqa: E402 - after the path set-up, so the bench runs from a checkout
from sovkit.config import load_stack  # noqa: E402
from sovkit.hosts import Podman, default_cache_dir  # noqa: E402
from sovkit.local.up import LocalSite  # noqa: E402
from sovkit.render.vllm_args import default_port  # noqa: E402

TARGETS = {"cold_s": 480.0, "warm_s": 90.0, "p50_overhead_ms": 2.0, "gateway_cpu_share": 0.05}


def sovkit(*args: str) -> float:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sovkit", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        sys.exit(f"sovkit {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return time.monotonic() - started


def gateway_load(seconds: float, max_tokens: int, pairs: int) -> dict:
    site = load_stack(ROOT / "stacks" / "Pulumi.local.yaml")
    local = LocalSite(site)
    host = site.serving_nodes()[0]
    tenant, spec = max(site.serving.tenants.items(), key=lambda item: item[1].rate_limit.requests_per_minute)
    model = spec.models[0]
    assert spec.api_key.file
    tenant_key = Path(spec.api_key.file).read_text().strip()
    upstream_key = (local.state_dir / "secrets" / "upstream-api-key").read_text().strip()
    podman = Podman(default_cache_dir() / "podman")
    container_id, netns_pid = podman("inspect", "--format", "{{.Id}} {{.State.Pid}}", host.name).split()
    sides = {"direct": (f"http://127.0.0.1:{default_port(site, model)}/v1/completions", upstream_key),
             "gateway": (f"https://{host.address}:{ports.GATEWAY}/v1/completions", tenant_key)}
    body = json.dumps({"model": model, "prompt": "Habari", "max_tokens": max_tokens, "temperature": 0,
                       "ignore_eos": True})
    units = {"gateway": "nginx.service", "model server": f"sovkit-vllm-{model}.service"}
    print(f"gateway tenant {tenant}, model {model}, {max_tokens}-token completions, wrk in {host.name}'s network;"
          f" {pairs} pairs of {seconds:g} s runs at each concurrency (each pair's first side alternates)", flush=True)
    with wrk_script() as script:
        load = Load(int(netns_pid), script, body)
        return {str(c): measure(load, sides, c, seconds, pairs, (container_id, units)) for c in (1, 16)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3, help="length of each direct or gateway run")
    parser.add_argument("--pairs", type=int, default=20, help="measured direct/gateway pairs per concurrency")
    parser.add_argument("--max-tokens", type=int, default=1,
                        help="tokens each completion generates (1: the gateway's fixed cost shows most)")
    parser.add_argument("--keep", action="store_true", help="leave the site up afterwards")
    parser.add_argument("--load-only", action="store_true", help="only the gateway figures, on the running site")
    args = parser.parse_args()
    subprocess.run(["bash", str(ROOT / "scripts" / "bench-deps.sh")], check=True, stdout=subprocess.DEVNULL)

    figures: dict[str, float] = {}
    if not args.load_only:
        sovkit("down", "--stack", "local")
        figures["cold_s"] = sovkit("up", "--stack", "local")
        print(f"up cold (host image cached): {figures['cold_s']:6.1f} s   target <= {TARGETS['cold_s']:.0f} s",
              flush=True)
        figures["warm_s"] = sovkit("up", "--stack", "local")
        print(f"up warm re-run:              {figures['warm_s']:6.1f} s   target <= {TARGETS['warm_s']:.0f} s",
              flush=True)
    load = gateway_load(args.seconds, args.max_tokens, args.pairs)
    print(f"{'':>16}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'fail':>6}")
    for concurrency, result in load.items():
        for side in ("direct", "gateway"):
            r = result[side]
            print(f"{side:>8} c={concurrency:<4}{r['p50_ms']:9.2f}{r['p99_ms']:9.2f}{r['throughput_rps']:9.1f}"
                  f"{r['failures']:6d}")
        overhead, ratio = result["paired"]["p50_overhead_ms"], result["paired"]["throughput_ratio"]
        figures[f"p50_overhead_ms_c{concurrency}"] = overhead
        figures[f"throughput_ratio_c{concurrency}"] = ratio
        gateway_cpu = result["gateway"]["cpu_us_per_request"]
        share = gateway_cpu["gateway"] / gateway_cpu["model server"]
        figures[f"gateway_cpu_share_c{concurrency}"] = share
        print(f"  c={concurrency}, medians of {result['paired']['pairs']} pairs: gateway p50 overhead "
              f"{overhead:+.2f} ms (target <= {TARGETS['p50_overhead_ms']}), throughput {ratio:.1%} of direct "
              f"(no target)\n"
              f"  CPU per request: gateway {gateway_cpu['gateway']:.0f} us, {share:.1%} of the model server's "
              f"{gateway_cpu['model server']:.0f} us behind it (target <= {TARGETS['gateway_cpu_share']:.0%}); "
              f"{result['direct']['cpu_us_per_request']['model server']:.0f} us direct", flush=True)
    if not args.keep and not args.load_only:
        sovkit("down", "--stack", "local")
    failures = sum(result[side]["failures"] for result in load.values() for side in ("direct", "gateway"))
    missed = [k for k in ("cold_s", "warm_s") if k in figures and figures[k] > TARGETS[k]]
    missed += [k for k in figures if k.startswith("p50_overhead") and figures[k] > TARGETS["p50_overhead_ms"]]
    missed += [k for k in figures if k.startswith("gateway_cpu_share") and figures[k] > TARGETS["gateway_cpu_share"]]
    print("PASS" if not missed and not failures else f"MISSED: {missed}, failed requests: {failures}")
    return 0 if not missed and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
