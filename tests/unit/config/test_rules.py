"""Cross-field rules, on small edits of shipped stacks: what passes, what fails, and what it says."""

from pathlib import Path

import pytest

from sovkit.config import load_stack
from sovkit.errors import StackError

STACKS = Path(__file__).parents[3] / "stacks"


def edited(tmp_path: Path, stack: str, old: str, new: str) -> Path:
    text = (STACKS / f"Pulumi.{stack}.yaml").read_text()
    assert old in text, old
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def problems(path: Path) -> str:
    with pytest.raises(StackError) as caught:
        load_stack(path)
    return str(caught.value)


def test_a_model_may_span_nodes_in_kubernetes_mode(tmp_path):
    """16 GPUs over two 8-GPU nodes is a LeaderWorkerSet deployment, allowed in kubernetes mode (placed; whether the
    models after it still find GPUs is the planner's verdict, left out here)."""
    path = edited(tmp_path, "za-national-dc", "replicas: 2\n      tensorParallel: 2",
                  "replicas: 1\n      tensorParallel: 16")
    site = load_stack(path, fit=False)
    assert site.serving.models["qwen2-5-14b"].tensor_parallel == 16


def test_a_model_that_does_not_fit_is_refused_with_what_would(tmp_path):
    """The planner's verdict is a rule: the model takes every GPU, so the models after it find none."""
    text = problems(edited(tmp_path, "za-national-dc", "replicas: 2\n      tensorParallel: 2",
                           "replicas: 1\n      tensorParallel: 16"))
    assert "sovereign-ai:models.llama-3-1-8b" in text and "a model that fits its nodes" in text
    assert "find free GPUs" in text and "Would fit:" in text


def test_spanning_more_gpus_than_the_site_has_is_refused(tmp_path):
    text = problems(edited(tmp_path, "za-national-dc", "tensorParallel: 2", "tensorParallel: 24"))
    assert "a multiple of it up to 16" in text


def test_replicas_beyond_the_gpus_are_refused(tmp_path):
    text = problems(edited(tmp_path, "za-national-dc", "replicas: 2\n      tensorParallel: 2",
                           "replicas: 2\n      tensorParallel: 16"))
    assert "at most 1 replicas of 16 GPUs on 16 GPUs" in text


def test_cpu_site_refuses_tensor_parallel(tmp_path):
    text = problems(edited(tmp_path, "br-ministerio-cpu", "replicas: 2\n", "replicas: 2\n      tensorParallel: 2\n"))
    assert "sovereign-ai:models.qwen2-5-1-5b.tensorParallel" in text and "auto or 1 on a cpu site" in text


def test_retention_comes_from_the_profile_when_unset_and_says_so():
    site = load_stack(STACKS / "Pulumi.in-mh-pune.yaml")
    assert site.log_retention_days == 365
    assert site.provenance["sovereign-ai:logRetentionDays"] == "country profile in (regulation: DPDP Rules r. 6(1)(e))"
    local = load_stack(STACKS / "Pulumi.local.yaml")
    assert "the law leaves it to the operator" in local.provenance["sovereign-ai:logRetentionDays"]


def test_a_waiver_admits_another_state_backend(tmp_path):
    path = edited(tmp_path, "in-mh-pune", "sovereign-ai:stateBackend: file:///var/lib/sovkit/pulumi-state",
                  "sovereign-ai:stateBackend: https://api.pulumi.com\n  sovereign-ai:stateBackendWaiver: "
                  "Interim arrangement approved by the state CISO until the in-country store is commissioned")
    assert load_stack(path).residency.state_backend == "https://api.pulumi.com"


def test_every_problem_is_reported_at_once(tmp_path):
    path = edited(tmp_path, "in-mh-pune", "    - 198.51.100.200  #", "    - 192.0.2.123  #")
    path.write_text(path.read_text().replace("    - 203.0.113.53", "    - 8.8.8.8"))
    text = problems(path)
    assert "2 problems" in text and "192.0.2.123" in text and "8.8.8.8" in text


def test_problems_carry_the_line_of_the_key(tmp_path):
    path = edited(tmp_path, "in-mh-pune", "tensorParallel: 2", "tensorParallel: 3")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "tensorParallel: 3" in text)
    assert f"{path}:{line}: sovereign-ai:models.llama-3-1-8b.tensorParallel" in problems(path)


def test_hosts_mode_runs_one_replica_on_every_node_of_the_role(tmp_path):
    """The roles run every model once on every serving node: replicas that say otherwise are not honoured."""
    text = problems(edited(tmp_path, "br-ministerio-cpu", "replicas: 2\n", "replicas: 3\n"))
    assert "sovereign-ai:models.qwen2-5-1-5b.replicas" in text and "2: in hosts mode every cpu_worker node" in text
