"""What the gateway lets a tenant call on a model server, and what it keeps to itself.

Every catalogue model is generative, so vLLM serves it on the routes below; the gateway routes each by the tenant's
grant and answers every other path with an OpenAI-shaped 404 (an embeddings call to a chat model included).
vLLM's own routes outside the OpenAI API take no API key (vLLM's security page: pausing, sleeping, reloading weights,
RPC to its workers, profiling, LoRA loading): none may be reachable through the gateway, and the compliance suite
probes each of those listed here on every gateway (SOV-GW-003)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from sovkit.config.catalogue import served_task, tasks
from sovkit.config.checks import GATE_TENANT
from sovkit.config.site import SiteConfig
from sovkit.render.gate import GATE_BURST, GATE_REQUESTS_PER_MINUTE, WithheldGrant, gated_models
from sovkit.workspace import HOST_DATA_PATHS

# Its JSON access log (one line per request, tokens included) and error log: `sovkit usage` reads them here.
ACCESS_LOG_DIR = f"{HOST_DATA_PATHS['logs']}/gateway"
# The gateway's own metrics (responses by tenant and status, tokens by tenant and model, counted from its access log
# by mtail on loopback), served to the site's monitoring through the gateway, as the model servers' metrics are.
LOG_METRICS_PATH = "/gateway-metrics"
LOG_METRICS_ADDRESS = "127.0.0.1"  # mtail's, on ports.GATEWAY_LOG_METRICS

# A model server's HTTP server closes a connection idle this long (vLLM's VLLM_HTTP_TIMEOUT_KEEP_ALIVE, set to it in
# hosts mode); the gateway drops its idle connections to a model server a second sooner, so it never sends a request
# on one the server is closing (nginx does not retry a POST: the caller would get 503).
MODEL_SERVER_KEEP_ALIVE_S = 5
MODEL_SERVER_IDLE_CONNECTION_S = MODEL_SERVER_KEEP_ALIVE_S - 1

# The budget keeper (sovkit/usage/budget_keeper.py, copied to each gateway host) marks tenants whose token budget
# is spent in its runtime folder; gateway.js reads a budgeted tenant's mark before each model call.
BUDGET_KEEPER_RUNTIME_DIRECTORY = "sovkit-budget"
BUDGET_MARKS_DIR = f"/run/{BUDGET_KEEPER_RUNTIME_DIRECTORY}"
BUDGET_KEEPER_CONFIG = "/etc/sovkit/budget-keeper.json"
BUDGET_KEEPER_DIR = "/usr/local/lib/sovkit"  # its program
BUDGET_KEEPER_INTERVAL_S = 1  # how often it reads new log lines: a spent budget is refused within about this


def budgets(site: SiteConfig) -> dict[str, dict]:
    """The keeper's budgets, per budgeted tenant (weights as written: a token counts for its weight)."""
    return {name: {"tokens_per_day": t.budget.tokens_per_day, "tokens_per_month": t.budget.tokens_per_month,
                   "prompt_weight": t.budget.prompt_weight, "completion_weight": t.budget.completion_weight}
            for name, t in sorted(site.serving.tenants.items()) if t.budget is not None}


# POST routes the model servers answer (vLLM 0.32's API server), routed by the tenant's grant on the model the body
# names (a JSON body's model field, or the model field of a multipart form: speech recognition uploads audio), and
# only to a model whose task is served on that route (sovkit/data/tasks.yaml); every model also tokenizes.
TOKENIZER_ROUTES = ("/tokenize", "/detokenize")
MODEL_ROUTES = {**{route: task.body for task in tasks().values() for route in task.routes},
                **dict.fromkeys(TOKENIZER_ROUTES, "json")}


def model_routes(site: SiteConfig) -> dict[str, list[str]]:
    """{served model: the routes it answers}: its task's routes and the tokenizer's. Another route with that model
    gets the gateway's OpenAI-shaped 404, not the model server's."""
    return {served: sorted({*tasks()[served_task(spec.catalogue, spec.task)].routes, *TOKENIZER_ROUTES})
            for served, spec in sorted(site.serving.models.items())}

# vLLM's routes without authentication (vLLM 0.32's API server); each must answer the gateway's 404.
MODEL_SERVER_ADMIN_ROUTES = (
    "/invocations", "/pause", "/resume", "/is_paused", "/sleep", "/wake_up", "/is_sleeping", "/collective_rpc",
    "/update_weights", "/start_weight_update", "/reset_prefix_cache", "/reset_mm_cache", "/start_profile",
    "/stop_profile", "/server_info", "/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/scale_elastic_ep",
    "/abort_requests", "/inference/v1/abort_requests", "/docs", "/openapi.json", "/version", "/load", "/ping",
    # its pooling routes outside /v1 (its API key guards /v1 only): the gateway serves their /v1 forms
    "/pooling", "/classify", "/score", "/rerank", "/v2/rerank", "/v2/embed",
)


def retry_after_s(requests_per_minute: int) -> int:
    """Seconds until a tenant refused by its request rate may send again: one request's share of a minute."""
    return max(1, math.ceil(60 / requests_per_minute))


def tenant_grants(site: SiteConfig, withheld: Iterable[WithheldGrant] = ()) -> dict[str, dict]:
    """What the gateway grants each tenant: the models the stack lists less those the quality gate withholds
    (named under `withheld`, so a tenant whose every model is withheld is still known and refused nothing else), its
    rate limit; and, when a model has a gate, the gate's own tenant, granted every gated model."""
    held: dict[str, list[str]] = {}
    for grant in withheld:
        held.setdefault(grant.tenant, []).append(grant.model)
    grants = {name: {"models": [m for m in t.models if m not in held.get(name, [])],
                     "withheld": sorted(held.get(name, [])), "requests_per_minute": t.rate_limit.requests_per_minute,
                     "burst": t.rate_limit.burst, "retry_after_s": retry_after_s(t.rate_limit.requests_per_minute)}
              for name, t in site.serving.tenants.items()}
    if gated_models(site) and GATE_TENANT not in grants:  # a stack tenant of that name is refused, never replaced
        grants[GATE_TENANT] = {"models": gated_models(site), "withheld": [], "gate": True,
                               "requests_per_minute": GATE_REQUESTS_PER_MINUTE, "burst": GATE_BURST,
                               "retry_after_s": retry_after_s(GATE_REQUESTS_PER_MINUTE)}
    return dict(sorted(grants.items()))
