"""Run inside the vLLM CPU venv: parse argument lists (JSON on stdin) with vLLM's own serve parser.

Prints JSON: {"methods": [...quantization methods...], "results": [{"ok": bool, "error": str, "parsed": {...}}]}.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    results = []
    for args in json.load(sys.stdin):
        parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
        try:
            ns = parser.parse_args(args)
            validate_parsed_serve_args(ns)
        except (SystemExit, Exception) as err:  # argparse exits; validation raises
            results.append({"ok": False, "error": f"{type(err).__name__}: {err}"})
            continue
        keys = ("model", "served_model_name", "host", "port", "max_model_len", "max_num_seqs", "quantization",
                "tensor_parallel_size", "pipeline_parallel_size", "gpu_memory_utilization", "enable_prefix_caching",
                "dtype", "distributed_executor_backend", "api_key", "generation_config")
        results.append({"ok": True, "parsed": {k: getattr(ns, k, None) for k in keys}})
    json.dump({"methods": list(QUANTIZATION_METHODS), "results": results}, sys.stdout, default=str)


if __name__ == "__main__":
    main()
