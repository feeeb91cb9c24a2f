"""API keys and the kubeconfig are Pulumi secrets: in resource inputs, in outputs, and nowhere in plain text."""

from __future__ import annotations

import hashlib
import json

from pulumi.runtime import rpc

from sovkit.infra.testing import FAKE_RANDOM_PREFIX, FAKE_TOKEN
from sovkit.render.cluster_gateway import TENANTS_SECRET


def _plain_strings(value: object):
    """Every string in an input value that is not wrapped as a secret."""
    if rpc.is_rpc_secret(value):
        return
    if isinstance(value, dict):
        for v in value.values():
            yield from _plain_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _plain_strings(v)
    elif isinstance(value, str):
        yield value


def test_no_secret_in_plain_outputs(shipped):
    secrets = [*shipped.run.secret_values.values(), FAKE_TOKEN, FAKE_RANDOM_PREFIX]
    for name, value in shipped.run.outputs.items():
        if name in shipped.run.secret_outputs:
            continue
        text = json.dumps(value, default=str)
        assert not [s for s in secrets if s in text], f"output {name} holds a secret in plain text"


def test_no_secret_in_plain_resource_inputs(shipped):
    secrets = [*shipped.run.secret_values.values(), FAKE_TOKEN, FAKE_RANDOM_PREFIX]
    for resource in shipped.run.mocks.resources:
        for text in _plain_strings(resource.inputs):
            assert not [s for s in secrets if s in text], f"{resource.type_} {resource.name} holds a secret in clear"


def test_kubeconfig_is_secret(kubernetes_stack):
    run = kubernetes_stack.run
    assert "kubeconfig" in run.secret_outputs
    assert FAKE_TOKEN in run.outputs["kubeconfig"]
    provider = run.mocks.of_type("pulumi:providers:kubernetes")
    assert len(provider) == 1
    assert rpc.is_rpc_secret(provider[0].inputs["kubeconfig"])


def test_tenant_api_keys_reach_the_cluster_as_hashes_only(kubernetes_stack):
    """The gateway compares SHA-256 hashes: the tenants Secret holds tenants.json with each key's hash, never a key,
    and is a secret in state all the same."""
    run = kubernetes_stack.run
    site = kubernetes_stack.site
    secret = run.mocks.named(f"{site.name}-gateway-tenants")
    assert secret.plain("metadata")["name"] == TENANTS_SECRET
    data = secret.inputs["stringData"]
    assert rpc.is_rpc_secret(data) or all(rpc.is_rpc_secret(v) for v in data.values())
    tenants = json.loads(secret.plain("stringData")["tenants.json"])
    keys = {t: run.secret_values[f"sovereign-ai:{s.api_key.pulumi_secret}"] for t, s in site.serving.tenants.items()}
    assert tenants["keys"] == {hashlib.sha256(k.encode()).hexdigest(): t for t, k in keys.items()}
    assert not [k for k in keys.values() if k in json.dumps(secret.plain("stringData"))]


def test_model_keys_are_secret(kubernetes_stack):
    secrets = [r for r in kubernetes_stack.run.mocks.of_type("kubernetes:core/v1:Secret")
               if r.plain("metadata")["name"].startswith("sovkit-vllm-")]
    assert secrets
    for secret in secrets:
        data = secret.inputs["stringData"]
        assert rpc.is_rpc_secret(data) or all(rpc.is_rpc_secret(v) for v in data.values())
        assert all(v.startswith(FAKE_RANDOM_PREFIX) for v in secret.plain("stringData").values())


def test_shipped_stack_files_hold_no_secret_values(shipped):
    """Keys are named (pulumiSecret) or on disk (file); the stack file never holds one."""
    for tenant in shipped.site.serving.tenants.values():
        assert tenant.api_key.pulumi_secret or tenant.api_key.file
