"""Load generator run INSIDE the serving host by bench_up.py (standard library only): the same requests through
the gateway (TLS, tenant key, rate limit, JSON log) and directly to vLLM on localhost, at concurrency 1 and 16.

    SOVKIT_TENANT_KEY=... SOVKIT_UPSTREAM_KEY=... \
        python3 gateway_load.py GATEWAY_URL DIRECT_URL MODEL CA_FILE REQUESTS MAX_TOKENS ROUNDS

At each concurrency: one untimed warm-up pair, then ROUNDS pairs (direct, then gateway, back to back).
Prints one JSON object: {"gateway": {"1": {...}, "16": {...}}, "direct": {...}, "paired": {...}}: each
side's figures are the median over the rounds; "paired" holds the median, over the rounds, of the gateway's
p50 overhead and throughput ratio against the direct run just before it, so drift on the machine between
rounds (another tenant of these two cores, a warm cache) falls on both sides of every pair alike.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit


def run(url: str, key: str, body: bytes, requests: int, concurrency: int, context: ssl.SSLContext | None) -> dict:
    parts = urlsplit(url)
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    per_worker = requests // concurrency

    def worker() -> None:
        nonlocal failures
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=120)
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        for _ in range(per_worker):
            started = time.perf_counter()
            try:
                conn.request("POST", parts.path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException) as err:
                print(f"{url}: {err}", file=sys.stderr)
                conn.close()  # the next request reconnects
                ok = False
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                failures += not ok

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"requests": len(ordered), "failures": failures, "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            "throughput_rps": len(ordered) / wall}


def main() -> None:
    gateway, direct, model, ca_file, requests, max_tokens, n_rounds = sys.argv[1:8]
    tenant_key, upstream_key = os.environ["SOVKIT_TENANT_KEY"], os.environ["SOVKIT_UPSTREAM_KEY"]
    context = ssl.create_default_context(cafile=ca_file)
    body = json.dumps({"model": model, "prompt": "Habari", "max_tokens": int(max_tokens),
                       "temperature": 0, "ignore_eos": True}).encode()
    out: dict[str, dict] = {"gateway": {}, "direct": {}, "paired": {}}
    for concurrency in (1, 16):
        sides = (("direct", direct, upstream_key), ("gateway", gateway, tenant_key))
        for _label, url, key in sides:  # warm-up: connections, caches
            run(url, key, body, int(requests), concurrency, context)
        rounds: dict[str, list[dict]] = {"direct": [], "gateway": []}
        for _ in range(int(n_rounds)):
            for label, url, key in sides:
                rounds[label].append(run(url, key, body, int(requests), concurrency, context))
        for label, results in rounds.items():
            out[label][str(concurrency)] = {
                figure: statistics.median(r[figure] for r in results)
                for figure in ("p50_ms", "p99_ms", "throughput_rps")} | {
                "requests": sum(r["requests"] for r in results), "failures": sum(r["failures"] for r in results)}
        pairs = list(zip(rounds["direct"], rounds["gateway"], strict=True))
        out["paired"][str(concurrency)] = {
            "p50_overhead_ms": statistics.median(g["p50_ms"] - d["p50_ms"] for d, g in pairs),
            "throughput_ratio": statistics.median(g["throughput_rps"] / d["throughput_rps"] for d, g in pairs),
            "rounds": len(pairs)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
