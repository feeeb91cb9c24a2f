"""Time `sovkit up --stack local` cold (host image cached, no site running) and warm (a re-run), then the
gateway's cost: p50/p99 latency and throughput through the gateway and directly to vLLM, at concurrency 1 and
16, in the same run, with wrk inside the serving host's network (vLLM listens on its localhost only; see
gateway_load.py). Needs root (podman, nsenter) and wrk: scripts/bench-deps.sh installs it, pinned.

    .venv/bin/python bench/bench_up.py [--seconds S] [--pairs N] [--max-tokens N] [--stream] [--keep] [--load-only]

The gateway figures come twice: with usage accounting (the gateway as the roles install it: streamed requests ask
for usage, every answer's usage is read for the access log) and without (its body filter and body rewrite taken out
of the running gateway's configuration for the run, then put back). --stream measures streamed completions.

Targets: cold <= 480 s, warm <= 90 s, gateway p50 overhead <= 2 ms, and the gateway's CPU per request at most 5 %
of the model server's behind it, accounting included. Throughput ratios are printed, not held to a target: on two
shared cores they measure the CPU backend's scheduling, not the gateway. Exits 1 when a target is missed. Leaves
the site down unless --keep.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
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


GATEWAY_CONF = "/etc/nginx/conf.d/sovkit-gateway.conf"
ACCOUNTING_LINES = ("proxy_set_body $sovkit_body;", "js_body_filter gateway.account")


@contextmanager
def accounting_off(podman: Podman, host: str) -> Iterator[None]:
    """The running gateway without its usage accounting (body rewrite and body filter), put back afterwards."""
    original = podman("exec", host, "cat", GATEWAY_CONF)
    stripped = "".join(line for line in original.splitlines(keepends=True)
                       if not line.strip().startswith(ACCOUNTING_LINES))
    assert stripped != original, f"no accounting lines in {GATEWAY_CONF}"

    def install(text: str) -> None:
        subprocess.run(["podman", "exec", "-i", host, "sh", "-c",
                        f"cat > {GATEWAY_CONF} && nginx -t -q && systemctl reload nginx"],
                       input=text, text=True, env=podman.env(), check=True, capture_output=True)
        time.sleep(2)  # the old workers finish

    install(stripped)
    try:
        yield
    finally:
        install(original)


def gateway_load(seconds: float, max_tokens: int, pairs: int, stream: bool) -> dict:
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
                       "ignore_eos": True, "stream": stream})
    units = {"gateway": "nginx.service", "model server": f"sovkit-vllm-{model}.service"}
    print(f"gateway tenant {tenant}, model {model}, {max_tokens}-token {'streamed ' if stream else ''}completions, "
          f"wrk in {host.name}'s network; {pairs} pairs of {seconds:g} s runs at each concurrency (each pair's first "
          f"side alternates)", flush=True)
    out = {}
    with wrk_script() as script:
        load = Load(int(netns_pid), script, body)
        for accounting in ("with", "without"):
            with accounting_off(podman, host.name) if accounting == "without" else nullcontext():
                for c in (1, 16):
                    out[f"{accounting} accounting, c={c}"] = measure(load, sides, c, seconds, pairs,
                                                                    (container_id, units))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3, help="length of each direct or gateway run")
    parser.add_argument("--pairs", type=int, default=20, help="measured direct/gateway pairs per concurrency")
    parser.add_argument("--max-tokens", type=int, default=1,
                        help="tokens each completion generates (1: the gateway's fixed cost shows most)")
    parser.add_argument("--stream", action="store_true", help="streamed completions (server-sent events)")
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
    load = gateway_load(args.seconds, args.max_tokens, args.pairs, args.stream)
    for run, result in load.items():
        print(f"{run}:\n{'':>10}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'fail':>6}")
        for side in ("direct", "gateway"):
            r = result[side]
            print(f"{side:>10}{r['p50_ms']:9.2f}{r['p99_ms']:9.2f}{r['throughput_rps']:9.1f}{r['failures']:6d}")
        overhead, ratio = result["paired"]["p50_overhead_ms"], result["paired"]["throughput_ratio"]
        figures[f"p50_overhead_ms, {run}"] = overhead
        figures[f"throughput_ratio, {run}"] = ratio
        gateway_cpu = result["gateway"]["cpu_us_per_request"]
        share = gateway_cpu["gateway"] / gateway_cpu["model server"]
        figures[f"gateway_cpu_share, {run}"] = share
        print(f"  medians of {result['paired']['pairs']} pairs: gateway p50 overhead "
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
