"""Serving adapters: the chart through the helm binary, the tiny model made offline, the chart's CI scenarios
and the `plan` and `values` commands. The catalogue and planner live in sovkit.config (validate needs them),
the vLLM arguments and chart values in sovkit.render."""

from __future__ import annotations

from pathlib import Path

CHART_NAME = "sovkit-serving"
CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / CHART_NAME
