"""lm-evaluation-harness tasks of a model's quality gate: one custom task per evaluation set of the stack, reading
the set's local JSON lines, asking each prompt through the OpenAI-compatible chat endpoint with greedy decoding, and
scoring the answer by exact match (case, punctuation and surrounding blanks ignored)."""

from __future__ import annotations

from collections.abc import Mapping

from sovkit.config.site import SiteConfig

METRIC = "exact_match"
FILTER = "none"  # lm-eval keys each score by metric and filter: "exact_match,none"
MAX_ANSWER_TOKENS = 32  # the sets ask for one word or a number
TASK_VERSION = 1  # bump when the rendering below changes what a score means


def task_name(served: str, set_name: str) -> str:
    return f"sovkit-{served}-{set_name}"


def task_configs(site: SiteConfig, served: str, files: Mapping[str, str]) -> dict[str, dict]:
    """{task name: task config (a task YAML's content)} for every set of the model; `files` maps each set's name to
    the file on the machine that runs the harness."""
    gate = site.serving.models[served].evaluation
    if gate is None:
        return {}
    return {task_name(served, name): {
        "task": task_name(served, name),
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": files[name]}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{answer}}",
        "generation_kwargs": {"until": ["\n"], "max_gen_toks": MAX_ANSWER_TOKENS, "do_sample": False,
                              "temperature": 0.0},
        "metric_list": [{"metric": METRIC, "aggregation": "mean", "higher_is_better": True, "ignore_case": True,
                         "ignore_punctuation": True, "regexes_to_ignore": [r"^\s+", r"\s+$"]}],
        "metadata": {"version": TASK_VERSION, "language": evaluation_set.language},
    } for name, evaluation_set in gate.sets.items()}
