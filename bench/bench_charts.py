"""Time rendering plus validation of charts/sovkit-serving for every ci/ scenario and every shipped stack:
helm lint --strict, helm template for Kubernetes 1.30 and 1.33, kubernetes-validate --strict
(target: < 20 s in all, one process, helm already installed).

    .venv/bin/python bench/bench_charts.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sovkit.config import load_stack  # noqa: E402 - after the path set-up above
from sovkit.render.values import render_values  # noqa: E402
from sovkit.serving import CHART_DIR, chart  # noqa: E402

TARGET_S = 20.0


def main() -> int:
    chart.helm_binary()  # install outside the timing
    started = time.perf_counter()
    cases: list[tuple[str, dict | Path]] = [(p.name, p) for p in sorted((CHART_DIR / "ci").glob("*-values.yaml"))]
    cases += [(p.name, render_values(load_stack(p))) for p in sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))]
    objects = 0
    for name, values in cases:
        t0 = time.perf_counter()
        chart.lint(values)
        for version in chart.KUBE_VERSIONS:
            rendered = chart.template(values, version)
            problems = chart.validate(rendered, version)
            if problems:
                print(f"{name} {version}: {problems}")
                return 1
            objects += len(rendered)
        print(f"{name:40} {time.perf_counter() - t0:6.2f} s")
    elapsed = time.perf_counter() - started
    verdict = "OK" if elapsed < TARGET_S else "OVER TARGET"
    print(f"{len(cases)} cases x {len(chart.KUBE_VERSIONS)} Kubernetes versions, {objects} objects validated: "
          f"{elapsed:.2f} s (target < {TARGET_S} s) {verdict}")
    return 0 if elapsed < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
