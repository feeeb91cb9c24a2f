"""The PrometheusRule the chart renders, checked and unit-tested by Prometheus' own promtool: the rules
parse, and the alerts fire on the series vLLM exports (and stay quiet on healthy ones)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sovkit.serving import CHART_DIR, chart

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None,
                                reason="promtool is not installed (Debian package prometheus)")
NS = chart.NAMESPACE


@pytest.fixture(scope="module")
def rules_file(helm, tmp_path_factory) -> str:
    objects = chart.template(CHART_DIR / "ci" / "two-models-values.yaml")
    [rule] = [o for o in objects if o["kind"] == "PrometheusRule"]
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return str(path)


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, check=False)


def test_rules_parse(rules_file):
    result = promtool("check", "rules", rules_file)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_on_vllm_series(rules_file, tmp_path):
    groups = yaml.safe_load(Path(rules_file).read_text())["groups"]
    annotations = {r["alert"]: r["annotations"] for g in groups for r in g["rules"]}
    model = f'namespace="{NS}", model_name="llama-3-1-8b"'
    tests = {
        "rule_files": [rules_file],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f"vllm:kv_cache_usage_perc{{{model}}}", "values": "0.95x30"},
                {"series": f'vllm:kv_cache_usage_perc{{namespace="{NS}", model_name="aya-expanse-8b"}}',
                 "values": "0.5x30"},
                {"series": f"vllm:num_requests_waiting{{{model}}}", "values": "20+1x30"},
                {"series": f'up{{namespace="{NS}", served_model="aya-expanse-8b", instance="10.0.0.9:8000"}}',
                 "values": "0x30"},
            ],
            "alert_rule_test": [
                {"eval_time": "15m", "alertname": "SovkitModelKvCacheFull", "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "namespace": NS, "model_name": "llama-3-1-8b"},
                     "exp_annotations": annotations["SovkitModelKvCacheFull"]
                     | {"summary": "KV cache of llama-3-1-8b above 90%"}}]},
                {"eval_time": "25m", "alertname": "SovkitModelQueueGrowing", "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "namespace": NS, "model_name": "llama-3-1-8b"},
                     "exp_annotations": annotations["SovkitModelQueueGrowing"]
                     | {"summary": "Requests queue up for llama-3-1-8b"}}]},
                {"eval_time": "10m", "alertname": "SovkitModelEndpointDown", "exp_alerts": [
                    {"exp_labels": {"severity": "critical", "namespace": NS, "served_model": "aya-expanse-8b",
                                    "instance": "10.0.0.9:8000"},
                     "exp_annotations": annotations["SovkitModelEndpointDown"]
                     | {"summary": "Model aya-expanse-8b endpoint 10.0.0.9:8000 is down"}}]},
                {"eval_time": "5m", "alertname": "SovkitModelKvCacheFull", "exp_alerts": []},
            ],
        }],
    }
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump(tests))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
