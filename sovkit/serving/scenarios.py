"""The chart's install scenarios (charts/sovkit-serving/ci/*-values.yaml), each the values of a small site
derived from a shipped stack, so every scenario is what `sovkit values` would print for a real site.

    python -m sovkit.serving.scenarios [CI_DIR]     rewrite the ci/ files (tests fail when they are stale)
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from sovkit.config import PROJECT, SiteConfig
from sovkit.config.loader import build_site
from sovkit.render.values import dump_values, render_values
from sovkit.serving import CHART_DIR
from sovkit.stacks import project_root, stack_path


def _stack(name: str) -> dict:
    text = stack_path(name, project_root(CHART_DIR)).read_text(encoding="utf-8")
    return yaml.safe_load(text)["config"]


def _model(catalogue: str, quant: str, context: int, tp: int | str = "auto", replicas: int = 1,
           languages: tuple[str, ...] = ("en",)) -> dict:
    return {"catalogue": catalogue, "source": f"s3://models.dc.gov.example/sovkit/{catalogue}-{quant}",
            "revision": "0e9e39f249a16976918f6564b8830bc894c89659", "quantization": quant, "maxContext": context,
            "languages": list(languages), "replicas": replicas, "tensorParallel": tp}


def _site(base: str, label: str, edit: Callable[[dict], None]) -> SiteConfig:
    config = copy.deepcopy(_stack(base))
    edit(config)
    models = config[f"{PROJECT}:models"]
    config[f"{PROJECT}:tenants"] = {"ministry": {"models": list(models), "rateLimit": {"requestsPerMinute": 60},
                                                 "apiKey": {"pulumiSecret": "tenantKeyMinistry"}}}
    return build_site(config, label, None)


def _gpu_hosts(model: str, count: int, nodes: int = 1) -> dict:
    hosts: dict = {"cp-01": {"address": "198.51.100.11", "role": "control_plane"}}
    for i in range(1, nodes + 1):
        hosts[f"gpu-0{i}"] = {"address": f"198.51.100.2{i}", "role": "gpu_worker",
                              "accelerator": {"model": model, "count": count}}
    return hosts


def _nvidia_one_gpu(c: dict) -> None:
    c[f"{PROJECT}:hosts"] = _gpu_hosts("L4-24GB", 1)
    c[f"{PROJECT}:models"] = {"llama-3-1-8b": _model("llama-3.1-8b-instruct", "awq", 8192, tp=1)}


def _nvidia_tp4(c: dict) -> None:
    c[f"{PROJECT}:hosts"] = _gpu_hosts("A100-SXM4-80GB", 4)
    c[f"{PROJECT}:models"] = {"qwen2-5-14b": _model("qwen2.5-14b-instruct", "none", 32768, tp=4, replicas=1)}


def _amd(c: dict) -> None:
    c[f"{PROJECT}:accelerator"] = "amd"
    c[f"{PROJECT}:acceleratorDriverVersion"] = "6.12.12"
    c[f"{PROJECT}:acceleratorToolkitVersion"] = "6.4.1"
    # the nodes' amdgpu-dkms comes from AMD's repository only (sovkit/data/vendors/amd.yaml)
    c[f"{PROJECT}:aptRepositories"] = {"amd": {"url": "https://mirror.dc.gov.example/amdgpu/6.4.1/ubuntu",
                                               "suites": ["jammy"], "components": ["main"],
                                               "signingKey": "/etc/sovkit/keys/rocm-archive.asc"}}
    c[f"{PROJECT}:hosts"] = _gpu_hosts("MI210-64GB", 4)
    c[f"{PROJECT}:models"] = {"seallm-v3-7b": _model("seallm-v3-7b-chat", "none", 16384, tp=1, replicas=2,
                                                    languages=("id", "en"))}


def _cpu(c: dict) -> None:
    c[f"{PROJECT}:accelerator"] = "cpu"
    for key in ("acceleratorDriverVersion", "acceleratorToolkitVersion"):
        c.pop(f"{PROJECT}:{key}", None)
    c[f"{PROJECT}:hosts"] = {"cp-01": {"address": "198.51.100.11", "role": "control_plane"},
                             "cpu-01": {"address": "198.51.100.41", "role": "cpu_worker"},
                             "cpu-02": {"address": "198.51.100.42", "role": "cpu_worker"}}
    c[f"{PROJECT}:models"] = {"qwen2-5-1-5b": _model("qwen2.5-1.5b-instruct", "awq", 4096, replicas=2)}


def _two_models(c: dict) -> None:
    c[f"{PROJECT}:servedUses"] = ["research"]  # Aya Expanse's licence (CC-BY-NC-4.0) allows research
    c[f"{PROJECT}:hosts"] = _gpu_hosts("L40S-48GB", 4)
    c[f"{PROJECT}:models"] = {
        "llama-3-1-8b": _model("llama-3.1-8b-instruct", "fp8", 16384, tp=1, replicas=2),
        "aya-expanse-8b": _model("aya-expanse-8b", "none", 8192, tp=1, languages=("en", "fr")),
    }


def _multi_node(c: dict) -> None:
    c[f"{PROJECT}:hosts"] = _gpu_hosts("H100-SXM5-80GB", 8, nodes=2)
    c[f"{PROJECT}:models"] = {"mistral-nemo": _model("mistral-nemo-instruct-2407", "none", 131072, tp=16,
                                                    languages=("en", "fr"))}


def _signed(c: dict) -> None:
    """Signed weights: a model across two nodes (LeaderWorkerSet) and one on a node of its own, both signed, beside
    one proven by its revision alone (no verify-model for it). The signer is the kit's own published key."""
    c[f"{PROJECT}:hosts"] = _gpu_hosts("H100-SXM5-80GB", 8, nodes=3)
    signed = {"signature": "model.sig", "signer": "stacks/keys/sovkit-tiny-model.pem"}
    c[f"{PROJECT}:models"] = {
        "mistral-nemo": _model("mistral-nemo-instruct-2407", "none", 131072, tp=16, languages=("en", "fr")) | signed,
        "llama-3-1-8b": _model("llama-3.1-8b-instruct", "fp8", 16384, tp=1) | signed,
        "qwen2-5-14b": _model("qwen2.5-14b-instruct", "none", 32768, tp=4),
    }


SCENARIOS: dict[str, tuple[str, Callable[[dict], None], str]] = {
    "nvidia-one-gpu": ("za-national-dc", _nvidia_one_gpu, "one NVIDIA L4 (24 GB), Llama 3.1 8B AWQ"),
    "nvidia-tp4": ("za-national-dc", _nvidia_tp4, "Qwen2.5 14B over 4 x A100 80GB (tensor parallel 4)"),
    "amd": ("za-national-dc", _amd, "AMD MI210 (ROCm), two SeaLLMs v3 replicas"),
    "cpu": ("za-national-dc", _cpu, "CPU-only nodes, Qwen2.5 1.5B AWQ"),
    "two-models": ("za-national-dc", _two_models, "Llama 3.1 8B FP8 and Aya Expanse 8B on L40S"),
    "multi-node": ("za-national-dc", _multi_node, "Mistral Nemo across two 8 x H100 nodes (LeaderWorkerSet)"),
    "signed": ("za-national-dc", _signed, "Mistral Nemo (two H100 nodes) and Llama 3.1 8B FP8 signed, Qwen2.5 14B "
               "not"),
}


def scenario_site(name: str) -> SiteConfig:
    base, edit, _ = SCENARIOS[name]
    return _site(base, f"scenario {name}", edit)


def scenario_text(name: str) -> str:
    title = SCENARIOS[name][2]
    head = (f"# ci scenario {name}: {title}.\n"
            "# Generated by `python -m sovkit.serving.scenarios` from a site derived from a shipped stack; "
            "do not edit.\n")
    return head + dump_values(render_values(scenario_site(name)))


def write(ci_dir: Path) -> list[Path]:
    ci_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SCENARIOS:
        path = ci_dir / f"{name}-values.yaml"
        path.write_text(scenario_text(name), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write(Path(sys.argv[1]) if len(sys.argv) > 1 else CHART_DIR / "ci"):
        print(p)
