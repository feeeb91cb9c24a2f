"""Run inside the vLLM CPU venv: parse argument lists (JSON on stdin) with vLLM's own serve parser.

Each item is an argument list, or {"args": [...], "config": {...}}: then vLLM also builds its model configuration from
those arguments and that config.json (no weights: the dummy load format), and reports what it made of the model.

Prints JSON: {"methods": [...quantization methods...], "results": [{"ok": bool, "error": str, "parsed": {...},
"model": {...} or "model_error": str}]}.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def model_facts(ns, config: dict) -> dict:
    """vLLM's model configuration from the parsed arguments and a config.json: its runner, its maximum length, its
    attention, and what it serves (generation, transcription, or a pooling model's score type)."""
    import vllm.model_executor.models.registry as registry
    from vllm.engine.arg_utils import EngineArgs

    # vLLM inspects a model class in a subprocess so as not to initialise CUDA; on this CPU-only check the class is
    # inspected here (a subprocess per architecture costs some 20 s cold).
    registry._run_in_subprocess = lambda fn: fn()
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_text(json.dumps(config), encoding="utf-8")
        ns.model, ns.load_format, ns.skip_tokenizer_init = folder, "dummy", True
        ns.quantization = None  # the weights' format is no fact of the architecture (and the CPU lacks GPU kernels)
        mc = EngineArgs.from_cli_args(ns).create_model_config()
        if mc.runner_type == "pooling":
            serves = mc.score_type
        elif mc.registry.is_transcription_only_model(mc.architectures, mc):
            serves = "transcription"
        else:
            serves = "generation"
        return {"runner": mc.runner_type, "max_model_len": mc.max_model_len, "attention": mc.attn_type,
                "serves": serves}


def main() -> None:
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    results = []
    for item in json.load(sys.stdin):
        args, config = (item["args"], item["config"]) if isinstance(item, dict) else (item, None)
        parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
        try:
            ns = parser.parse_args(args)
            validate_parsed_serve_args(ns)
        except (SystemExit, Exception) as err:  # argparse exits; validation raises
            results.append({"ok": False, "error": f"{type(err).__name__}: {err}"})
            continue
        keys = ("model", "served_model_name", "host", "port", "max_model_len", "max_num_seqs", "quantization",
                "tensor_parallel_size", "pipeline_parallel_size", "gpu_memory_utilization", "enable_prefix_caching",
                "dtype", "distributed_executor_backend", "api_key", "generation_config", "runner")
        result = {"ok": True, "parsed": {k: getattr(ns, k, None) for k in keys}}
        if config is not None:
            try:
                result["model"] = model_facts(ns, config)
            except Exception as err:  # reported to the test, which names the model
                result["model_error"] = f"{type(err).__name__}: {err}"
        results.append(result)
    json.dump({"methods": list(QUANTIZATION_METHODS), "results": results}, sys.stdout, default=str)


if __name__ == "__main__":
    main()
