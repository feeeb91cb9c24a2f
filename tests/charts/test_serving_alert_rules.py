"""The PrometheusRule the chart renders, checked and unit-tested by Prometheus' own promtool: the rules
parse, and the alerts fire on the series vLLM and the GPU exporters (DCGM's names) export, and stay quiet on
healthy ones."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sovkit import gpu_exporter
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


GPU_ALERTS = {"SovkitGpuMemoryNearlyFull", "SovkitGpuTooHot", "SovkitGpuDoubleBitEccErrors", "SovkitGpuXidError"}


def gpu_labels(index: int, **extra: str) -> dict[str, str]:
    """A GPU series' labels as DCGM exporter (and sovkit.gpu_exporter) give them, plus the scrape's."""
    return {"gpu": str(index), "UUID": f"GPU-0000000{index}-aaaa-bbbb-cccc-dddddddddddd",
            "pci_bus_id": f"00000000:{0x18 + index:02X}:00.0", "device": f"nvidia{index}", "modelName": "NVIDIA L40S",
            "Hostname": "gpu-01", "instance": "198.51.100.21:9400", "job": "gpu"} | extra


def gpu(index: int, **extra: str) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in gpu_labels(index, **extra).items()) + "}"


def test_gpu_alerts_fire_on_dcgm_series_and_stay_quiet_on_healthy_gpus(rules_file, tmp_path):
    """GPU 0 is nearly full, hot, has a double-bit ECC error and an Xid 79; GPU 1 is busy but healthy."""
    groups = yaml.safe_load(Path(rules_file).read_text())["groups"]
    annotations = {r["alert"]: r["annotations"] for g in groups for r in g["rules"]}
    assert set(annotations) >= GPU_ALERTS
    series = [
        (f"DCGM_FI_DEV_FB_USED{gpu(0)}", "45000x40"), (f"DCGM_FI_DEV_FB_FREE{gpu(0)}", "1068x40"),  # 97.7% full
        (f"DCGM_FI_DEV_FB_USED{gpu(1)}", "41000x40"), (f"DCGM_FI_DEV_FB_FREE{gpu(1)}", "5068x40"),  # 89%: vLLM's
        (f"DCGM_FI_DEV_GPU_TEMP{gpu(0)}", "88x40"), (f"DCGM_FI_DEV_GPU_TEMP{gpu(1)}", "80x40"),
        (f"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu(0)}", "0x4 1x35"), (f"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu(1)}", "0x40"),
        (f"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{gpu(1)}", "0+2x40"),  # corrected errors alone do not alert
        # DCGM's last Xid: 0 (err_code "0") until one comes, then a series of the Xid's own err_code
        (f"DCGM_FI_DEV_XID_ERRORS{gpu(0, err_code='0')}", "0x4 _x35"),
        (f"DCGM_FI_DEV_XID_ERRORS{gpu(0, err_code='79')}", "_x5 79x35"),
        (f"DCGM_FI_DEV_XID_ERRORS{gpu(1, err_code='0')}", "0x40"),
    ]

    def fired(alert: str, severity: str, summary: str, **extra: str) -> dict:
        return {"exp_labels": gpu_labels(0, **extra) | {"severity": severity},
                "exp_annotations": annotations[alert] | {"summary": summary}}

    checks = [
        {"eval_time": "16m", "alertname": "SovkitGpuMemoryNearlyFull", "exp_alerts": [
            fired("SovkitGpuMemoryNearlyFull", "warning", "GPU 0 of gpu-01 is 97.68% full")]},
        {"eval_time": "11m", "alertname": "SovkitGpuTooHot", "exp_alerts": [
            fired("SovkitGpuTooHot", "warning", "GPU 0 of gpu-01 at 88 C")]},
        {"eval_time": "5m", "alertname": "SovkitGpuDoubleBitEccErrors", "exp_alerts": [
            fired("SovkitGpuDoubleBitEccErrors", "critical", "GPU 0 of gpu-01 had 1 double-bit ECC errors")]},
        {"eval_time": "6m", "alertname": "SovkitGpuXidError", "exp_alerts": [
            fired("SovkitGpuXidError", "warning", "GPU 0 of gpu-01 reported Xid 79", err_code="79")]},
        # before the faults, or before their `for` has passed: quiet
        {"eval_time": "14m", "alertname": "SovkitGpuMemoryNearlyFull", "exp_alerts": []},
        {"eval_time": "9m", "alertname": "SovkitGpuTooHot", "exp_alerts": []},
        {"eval_time": "3m", "alertname": "SovkitGpuDoubleBitEccErrors", "exp_alerts": []},
        {"eval_time": "3m", "alertname": "SovkitGpuXidError", "exp_alerts": []},
    ]
    tests = {"rule_files": [rules_file], "evaluation_interval": "1m",
             "tests": [{"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series],
                        "alert_rule_test": checks}]}
    path = tmp_path / "gpu-tests.yaml"
    path.write_text(yaml.safe_dump(tests))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_gpu_rules_only_where_there_are_gpus_and_thresholds_are_values(helm):
    def groups(values: dict) -> dict[str, dict[str, str]]:
        [rule] = [o for o in chart.template(values) if o["kind"] == "PrometheusRule"]
        return {g["name"]: {r["alert"]: r["expr"] for r in g["rules"]} for g in rule["spec"]["groups"]}

    cpu = yaml.safe_load((CHART_DIR / "ci" / "cpu-values.yaml").read_text())
    assert list(groups(cpu)) == ["sovkit-serving.rules"]
    nvidia = yaml.safe_load((CHART_DIR / "ci" / "nvidia-one-gpu-values.yaml").read_text())
    nvidia["monitoring"]["prometheusRule"] |= {"gpuMemoryUsage": 0.95, "gpuTemperatureCelsius": 80,
                                               "gpuDoubleBitErrors": 2}
    rules = groups(nvidia)["sovkit-gpu.rules"]
    assert set(rules) == GPU_ALERTS
    assert rules["SovkitGpuMemoryNearlyFull"].endswith("> 0.95")
    assert rules["SovkitGpuTooHot"] == "DCGM_FI_DEV_GPU_TEMP > 80"
    assert rules["SovkitGpuDoubleBitEccErrors"] == "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL > 2"


def test_every_gpu_series_the_chart_reads_is_one_the_exporter_serves(rules_file):
    """Hosts mode has no DCGM exporter: sovkit.gpu_exporter must serve each DCGM series the alerts and panels read."""
    text = Path(rules_file).read_text() + (CHART_DIR / "files" / "dashboard.json").read_text()
    read = set(re.findall(r"DCGM_FI_[A-Z_]+", text))
    served = {name for name, _, _ in gpu_exporter.FIELDS} | {gpu_exporter.XID_ERRORS[0]}
    assert read == served
