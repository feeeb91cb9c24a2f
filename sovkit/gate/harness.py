"""lm-evaluation-harness for one gate run, in a process of its own: `python -m sovkit.gate.harness REQUEST.json`.

The request (written by sovkit.gate.run) names the model type and its arguments, the folder of the rendered task
YAMLs and where the scores go. The API key is never in it: lm-eval's OpenAI-compatible models read it from
OPENAI_API_KEY. lm-eval's own command line indexes its thousands of built-in tasks first (most of a small run's
time); the gate needs only its own, so it loads those alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sovkit.gate.harness REQUEST.json", file=sys.stderr)
        return 2
    request = json.loads(Path(args[0]).read_text())
    import lm_eval
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable

    manager = TaskManager(include_path=request["tasks_dir"], include_defaults=False)
    results = lm_eval.simple_evaluate(model=request["model_type"], model_args=request["model_args"],
                                      tasks=request["tasks"], task_manager=manager, apply_chat_template=True,
                                      num_fewshot=0, log_samples=False)
    if results is None:
        print("lm-eval returned no results", file=sys.stderr)
        return 1
    scores = {"lm_eval_version": lm_eval.__version__, "results": results["results"],
              "n-samples": results["n-samples"]}
    Path(request["output"]).write_text(json.dumps(scores, default=handle_non_serializable, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
