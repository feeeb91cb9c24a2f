"""`sovkit plan`, `sovkit values` and `sovkit catalogue` as an operator runs them."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from sovkit.serving.cli import catalogue_command, plan, values
from sovkit.stacks import project_root, stack_files


@pytest.mark.parametrize("stack", [p.name for p in stack_files(project_root())])
def test_plan_every_shipped_stack(stack):
    result = CliRunner().invoke(plan, [str(project_root() / "stacks" / stack)])
    assert result.exit_code == 0, result.output
    assert "fit" in result.output


def test_plan_shows_the_sizing():
    result = CliRunner().invoke(plan, ["za-national-dc"])
    assert result.exit_code == 0
    assert "8.46 GiB (fp8)" in result.output
    assert "128 KiB per token" in result.output
    assert "30 sequences of 16384 tokens (max-num-seqs 30)" in result.output
    assert "2 x H100-SXM5-80GB per replica (tensor parallel 2), 2 replicas" in result.output
    assert "10 GPUs in use" in result.output


def test_plan_refuses_what_does_not_fit_and_names_what_would(tmp_path):
    text = (project_root() / "stacks" / "Pulumi.in-mh-pune.yaml").read_text()
    text = text.replace("L40S-48GB, count: 4", "L4-24GB, count: 1").replace("tensorParallel: 2", "tensorParallel: 1")
    waiver = text[text.index("      # Sarvam AI's research"):text.index("    llama-3-1-8b:")]  # Qwen2.5 needs none
    text = text.replace(waiver, "").replace("catalogue: sarvam-1", "catalogue: qwen2.5-14b-instruct").replace(
        "maxContext: 8192", "maxContext: 32768").replace("languages: [mr, hi, en, bn, gu, ta, te, kn, ml, or, pa]",
                                                         "languages: [en]")
    stack = tmp_path / "Pulumi.in-mh-pune.yaml"
    stack.write_text(text)
    result = CliRunner().invoke(plan, [str(stack)])
    assert result.exit_code == 1
    assert "sovereign-ai:models.sarvam-1" in result.output
    assert "does not fit" in result.output
    assert "would fit: quantization: awq" in result.output


def test_plan_of_a_missing_stack():
    result = CliRunner().invoke(plan, ["atlantis"])
    assert result.exit_code == 2
    assert "no stack 'atlantis'" in result.output


def test_values_prints_chart_values():
    result = CliRunner().invoke(values, ["id-sulsel-cloud"])
    assert result.exit_code == 0, result.output
    rendered = yaml.safe_load(result.stdout)
    assert rendered["accelerator"] == "amd"
    assert set(rendered["models"]) == {"seallm-v3-7b", "qwen2-5-14b"}
    assert rendered["models"]["qwen2-5-14b"]["resources"]["limits"]["amd.com/gpu"] == 2


def test_plan_several_stacks_in_one_run():
    result = CliRunner().invoke(plan, ["local", "br-ministerio-cpu"])
    assert result.exit_code == 0, result.output
    assert "local: cpu, hosts mode" in result.output and "br-ministerio-cpu: cpu, hosts mode" in result.output


def test_values_of_a_hosts_mode_site_say_so_on_stderr():
    result = CliRunner().invoke(values, ["local"])
    assert result.exit_code == 0
    assert "runs in hosts mode" in result.stderr and "hosts mode" not in result.stdout
    assert yaml.safe_load(result.stdout)["models"]["tiny-chat"]["env"]["VLLM_CPU_KVCACHE_SPACE"] == "1"


def test_catalogue_lists_tasks_licences_and_where_each_quantization_runs():
    result = CliRunner().invoke(catalogue_command, ["--json"])
    assert result.exit_code == 0
    rows = {row["id"]: row for row in json.loads(result.output)}
    assert rows["bge-m3"]["tasks"] == {"embed": ["/v1/embeddings"]}
    assert rows["inkubalm-0.4b"]["licence"]["uses"] == ["research"] and "zu" in rows["inkubalm-0.4b"]["languages"]
    fp8 = rows["llama-3.2-1b-instruct"]["quantizations"]["fp8"]
    assert fp8["checkpoint"] == "RedHatAI/Llama-3.2-1B-Instruct-FP8"
    assert fp8["accelerators"] == {"amd": ["cdna3"], "nvidia": ["ampere", "ada", "hopper", "blackwell"]}
    text = CliRunner().invoke(catalogue_command, []).output
    assert "whisper-large-v3-turbo" in text and "transcribe (/v1/audio/transcriptions" in text
