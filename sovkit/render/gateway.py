"""What the gateway lets a tenant call on a model server, and what it keeps to itself.

Every catalogue model is generative, so vLLM serves it on the routes below; the gateway routes each by the tenant's
grant and answers every other path with an OpenAI-shaped 404 (an embeddings call to a chat model included).
vLLM's own routes outside the OpenAI API take no API key (vLLM's security page: pausing, sleeping, reloading weights,
RPC to its workers, profiling, LoRA loading): none may be reachable through the gateway, and the compliance suite
probes each of those listed here on every gateway (SOV-GW-003)."""

from __future__ import annotations

import math

from sovkit.workspace import HOST_DATA_PATHS

# Its JSON access log (one line per request, tokens included) and error log: `sovkit usage` reads them here.
ACCESS_LOG_DIR = f"{HOST_DATA_PATHS['logs']}/gateway"
# The gateway's own metrics (responses by tenant and status, tokens by tenant and model, counted from its access log
# by mtail on loopback), served to the site's monitoring through the gateway, as the model servers' metrics are.
LOG_METRICS_PATH = "/gateway-metrics"
LOG_METRICS_ADDRESS = "127.0.0.1"  # mtail's, on ports.GATEWAY_LOG_METRICS

# POST routes a generative model server answers, routed by the tenant's grant on the body's model field.
MODEL_ROUTES = ("/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize")

# vLLM's routes without authentication (vLLM 0.32's API server); each must answer the gateway's 404.
MODEL_SERVER_ADMIN_ROUTES = (
    "/invocations", "/pause", "/resume", "/is_paused", "/sleep", "/wake_up", "/is_sleeping", "/collective_rpc",
    "/update_weights", "/start_weight_update", "/reset_prefix_cache", "/reset_mm_cache", "/start_profile",
    "/stop_profile", "/server_info", "/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/scale_elastic_ep",
    "/abort_requests", "/inference/v1/abort_requests", "/docs", "/openapi.json", "/version", "/load", "/ping",
)


def retry_after_s(requests_per_minute: int) -> int:
    """Seconds until a tenant refused by its request rate may send again: one request's share of a minute."""
    return max(1, math.ceil(60 / requests_per_minute))
