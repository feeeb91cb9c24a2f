"""What the gateway routes and tells a refused tenant, as sovkit renders it for every hosts-mode site."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovkit.config import load_stack
from sovkit.render import gateway
from sovkit.render.role_vars import site_vars

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("per_minute", "seconds"), [(6, 10), (7, 9), (60, 1), (120000, 1)])
def test_retry_after_is_one_requests_share_of_a_minute_rounded_up(per_minute: int, seconds: int):
    assert gateway.retry_after_s(per_minute) == seconds


def test_no_route_is_both_served_and_refused():
    assert not set(gateway.MODEL_ROUTES) & set(gateway.MODEL_SERVER_ADMIN_ROUTES)


def test_each_tenant_is_rendered_with_its_retry_after_and_the_routes_it_may_call():
    site = load_stack(ROOT / "stacks" / "Pulumi.local.yaml")
    rendered = site_vars(site)
    assert rendered["gateway_routes"] == gateway.MODEL_ROUTES
    assert rendered["gateway_routes"]["/v1/audio/transcriptions"] == "form"  # the upload is a multipart form
    assert rendered["gateway_routes"]["/v1/embeddings"] == "json"
    # each model answers its task's routes and the tokenizer's, as tasks.yaml names them
    assert rendered["gateway_model_routes"] == {m: ["/detokenize", "/tokenize", "/v1/chat/completions",
                                                    "/v1/completions"] for m in site.serving.models}
    assert rendered["refused_model_server_routes"] == list(gateway.MODEL_SERVER_ADMIN_ROUTES)
    for name, tenant in site.serving.tenants.items():
        assert rendered["gateway_tenants"][name]["retry_after_s"] == gateway.retry_after_s(
            tenant.rate_limit.requests_per_minute)


def test_a_model_answers_only_its_tasks_routes():
    za = gateway.model_routes(load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml"))
    assert za["bge-m3"] == ["/detokenize", "/tokenize", "/v1/embeddings"]
    assert za["whisper-turbo"] == ["/detokenize", "/tokenize", "/v1/audio/transcriptions", "/v1/audio/translations"]
    assert set(gateway.MODEL_ROUTES) == {route for routes in za.values() for route in routes} | {
        "/v1/rerank", "/v1/score"}  # every task's routes are served; za serves no rerank model
