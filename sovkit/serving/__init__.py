"""Serving: the model catalogue, the sizing planner, the one vLLM-arguments renderer and the chart values.

    catalogue.catalogue() / check_models(site, plain_keys)   the catalogue and its stack rule
    planner.plan_site(site) -> [ModelPlan]                    sizing per model
    vllm_args.render_vllm(site, served_name) -> VllmLaunch     args + env, both serving modes
    values.render_values(site) -> dict                         values of charts/sovkit-serving
"""

from __future__ import annotations

from pathlib import Path

CHART_NAME = "sovkit-serving"
CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / CHART_NAME
