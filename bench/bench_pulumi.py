"""Time the Pulumi program under Pulumi's mocks: the largest shipped site and a generated 200-node OpenStack site.

    .venv/bin/python bench/bench_pulumi.py [--repeat N]

The mocks answer instantly, so this is the program's own cost (schema, components, the residency transform on
every resource, the SDK's registration machinery) as a site grows; a real `pulumi up` adds the providers' and
clouds' time on top. Target: under 10 s per run. Exits 1 when a run misses it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sovkit.config import load_stack
from sovkit.config.schema import PROJECT
from sovkit.infra.program import build, export
from sovkit.infra.pulumi_config import site_from_pulumi
from sovkit.infra.testing import run_program, stack_environment, stack_names

ROOT = Path(__file__).resolve().parents[1]

TARGET_S = 10.0
GENERATED_NODES = 200
BASE_STACK = "id-sulsel-cloud"


def _body() -> Callable[[], object]:
    def body() -> object:
        site = site_from_pulumi()
        program = build(site, root=ROOT)
        export(program)
        return program

    return body


def generated_config(nodes: int) -> tuple[dict[str, str], list[str]]:
    """The Indonesian OpenStack site grown to `nodes` servers: 3 control-plane nodes, the rest GPU workers."""
    config, secret_keys, _ = stack_environment(ROOT / "stacks" / f"Pulumi.{BASE_STACK}.yaml")
    groups = json.loads(config[f"{PROJECT}:openstackNodeGroups"])
    groups["control_plane"]["count"] = 3
    groups["gpu_worker"]["count"] = nodes - 3
    config[f"{PROJECT}:openstackNodeGroups"] = json.dumps(groups)
    return config, secret_keys


def timed(label: str, stack: str, repeat: int, config: dict | None = None, secret_keys: list | None = None) -> float:
    times, resources = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        run = run_program(stack, _body(), config=config, secret_keys=secret_keys)
        times.append(time.perf_counter() - start)
        resources = len(run.mocks.resources)
    best, median = min(times), statistics.median(times)
    verdict = "ok" if max(times) < TARGET_S else f"OVER the {TARGET_S:.0f} s target"
    print(f"{label:<44} {resources:>5} resources  median {median:6.2f} s  best {best:6.2f} s  "
          f"max {max(times):6.2f} s  ({verdict})")
    return max(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per site (default 3)")
    args = parser.parse_args(argv)
    run_program("local", _body())  # one warm-up run, so the figures below are the program's own cost
    sizes = {s: len(load_stack(ROOT / "stacks" / f"Pulumi.{s}.yaml").nodes) for s in stack_names()}
    worst = 0.0
    for stack in stack_names():
        worst = max(worst, timed(f"{stack} ({sizes[stack]} nodes)", stack, args.repeat))
    print(f"largest shipped site by nodes: {max(sizes, key=lambda s: (sizes[s], s))}")
    config, secret_keys = generated_config(GENERATED_NODES)
    worst = max(worst, timed(f"generated openstack site ({GENERATED_NODES} nodes)", BASE_STACK, args.repeat,
                             config, secret_keys))
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
