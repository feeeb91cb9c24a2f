"""Environment for running the vLLM CPU venv (imported by name: test folders are not packages)."""

from __future__ import annotations

import os

TELEMETRY_OFF = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def vllm_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "VLLM_TARGET_DEVICE": "cpu", **TELEMETRY_OFF, **extra}
