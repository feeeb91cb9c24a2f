"""What tenants and auditors rely on from the gateway, checked on the converged host over real TLS."""

import json

import pytest

GATEWAY = "https://sovkit-gw-host:8443"
CA = "/etc/sovkit/tls/site-ca.crt"
PROMPT_MARKER = "PROMPT-MARKER-7f3a"

# Runs on the host: one request through the gateway, verifying the certificate against the site CA.
CLIENT = r"""
import json, ssl, sys, urllib.request, urllib.error
base, ca, path, key, body = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
req = urllib.request.Request(base + path, data=body.encode() or None, method="POST" if body else "GET")
if key:
    req.add_header("Authorization", "Bearer " + key)
req.add_header("Content-Type", "application/json")
try:
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        print(json.dumps({"status": r.status, "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
"""


def call(host, path, key="", body=None):
    payload = json.dumps(body) if body is not None else ""
    result = host.run("python3 -c %s %s %s %s %s %s", CLIENT, GATEWAY, CA, path, key, payload)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def chat(model, text="hello"):
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def test_no_key_is_401(host):
    """Without a key nothing reaches a model."""
    assert call(host, "/v1/chat/completions", body=chat("chat-small"))["status"] == 401


def test_unknown_key_is_401(host):
    assert call(host, "/v1/chat/completions", "not-a-key", chat("chat-small"))["status"] == 401


def test_allowed_model_reaches_its_server_with_the_tenant_and_without_the_key(host):
    """The key stays at the gateway; the model server learns only the tenant."""
    answer = call(host, "/v1/chat/completions", "test-key-health", chat("chat-large"))
    assert answer["status"] == 200
    seen = json.loads(answer["body"])
    assert seen["port"] == 18002 and seen["tenant"] == "health"
    assert seen["authorization"] == "Bearer test-site-key-for-model-servers-0123456789"


def test_model_not_granted_is_404_as_if_it_did_not_exist(host):
    answer = call(host, "/v1/chat/completions", "test-key-registry", chat("chat-large"))
    assert answer["status"] == 404
    assert json.loads(answer["body"])["error"]["param"] == "model"


def test_unknown_model_is_404(host):
    assert call(host, "/v1/chat/completions", "test-key-health", chat("no-such-model"))["status"] == 404


def test_models_lists_only_the_tenants_models(host):
    answer = call(host, "/v1/models", "test-key-registry")
    assert [m["id"] for m in json.loads(answer["body"])["data"]] == ["chat-small"]


def events(answer):
    """The data of each server-sent event of a streamed answer."""
    return [line[6:] for line in answer["body"].splitlines() if line.startswith("data: ")]


def last_log_line(host):
    return json.loads(host.file("/var/log/sovkit/gateway/access.json").content_string.splitlines()[-1])


def test_the_model_servers_usage_of_a_whole_answer_is_logged(host):
    answer = call(host, "/v1/chat/completions", "test-key-health", chat("chat-small"))
    usage = json.loads(answer["body"])["usage"]
    logged = last_log_line(host)
    assert (logged["tenant"], logged["model"]) == ("health", "chat-small")
    assert (logged["prompt_tokens"], logged["completion_tokens"]) == (usage["prompt_tokens"], 5)


def test_a_stream_brings_usage_to_the_log_and_to_the_client_only_when_it_asked(host):
    """The gateway asks every stream for its usage and drops that event when the client did not ask; the
    content events, split over the model server's writes, pass whole and in order."""
    unasked = events(call(host, "/v1/chat/completions", "test-key-health", {**chat("chat-small"), "stream": True}))
    assert json.loads(unasked[0])["stream_options"] == {"include_usage": True}  # what reached the model server
    assert unasked[1:] == [r'{"choices":[{"index":0,"delta":{"content":"s\u00e9"}}]}'] * 3 + ["[DONE]"]
    logged = last_log_line(host)
    assert logged["completion_tokens"] == 5 and logged["prompt_tokens"] == json.loads(unasked[0])["body_bytes"]
    asked = events(call(host, "/v1/chat/completions", "test-key-health",
                        {**chat("chat-small"), "stream": True, "stream_options": {"include_usage": True}}))
    assert json.loads(asked[-2])["usage"]["completion_tokens"] == 5 and asked[-1] == "[DONE]"
    declined = events(call(host, "/v1/chat/completions", "test-key-health",
                           {**chat("chat-small"), "stream": True, "stream_options": {"include_usage": False}}))
    assert json.loads(declined[0])["stream_options"] == {"include_usage": True}
    assert all('"usage"' not in event for event in declined) and last_log_line(host)["completion_tokens"] == 5


def test_a_refused_request_logs_no_usage(host):
    assert call(host, "/v1/chat/completions", "not-a-key", chat("chat-small"))["status"] == 401
    logged = last_log_line(host)
    assert (logged["tenant"], logged["prompt_tokens"], logged["completion_tokens"]) == ("", None, None)


def test_rate_limit_is_per_tenant(host):
    """registry may send 6 a minute with a burst of 1: a quick run of four is cut; health is not."""
    statuses = [call(host, "/v1/chat/completions", "test-key-registry", chat("chat-small"))["status"]
                for _ in range(4)]
    assert 429 in statuses and statuses[0] == 200
    assert call(host, "/v1/chat/completions", "test-key-health", chat("chat-small"))["status"] == 200


def test_access_log_has_tenant_model_status_latency_but_never_the_prompt(host):
    call(host, "/v1/chat/completions", "test-key-health", chat("chat-small", PROMPT_MARKER))
    logs = host.run("cat /var/log/sovkit/gateway/*").stdout
    assert PROMPT_MARKER not in logs and "test-key-health" not in logs
    last = json.loads(host.file("/var/log/sovkit/gateway/access.json").content_string.splitlines()[-1])
    assert (last["tenant"], last["model"], last["status"]) == ("health", "chat-small", 200)
    assert isinstance(last["latency_s"], float)


@pytest.mark.parametrize(("path", "mode"), [("/etc/sovkit/tls/gateway.key", 0o600),
                                            ("/etc/nginx/sovkit/upstream-auth.conf", 0o600),
                                            ("/etc/nginx/sovkit/tenants.json", 0o600),
                                            ("/var/log/sovkit/gateway", 0o750)])
def test_sensitive_files_are_closed(host, path, mode):
    assert host.file(path).mode == mode and host.file(path).user == "root"


def test_tenants_file_holds_hashes_not_keys(host):
    content = host.file("/etc/nginx/sovkit/tenants.json").content_string
    assert "test-key-health" not in content and len(json.loads(content)["keys"]) == 2


def test_logs_are_kept_for_the_profiles_retention(host):
    config = host.file("/etc/logrotate.d/sovkit-gateway").content_string
    assert "rotate 400" in config and "maxage 400" in config
    assert host.run("logrotate -d /etc/logrotate.d/sovkit-gateway").rc == 0


def test_nginx_runs_enabled_and_its_config_checks(host):
    assert host.service("nginx").is_running and host.service("nginx").is_enabled
    assert host.run("nginx -t").rc == 0


def test_metrics_reach_prometheus_networks_only(host):
    """vLLM listens on localhost; Prometheus reads its metrics through the gateway, from allowed networks."""
    allowed = host.run("python3 -c %s %s %s %s '' ''", CLIENT, "https://127.0.0.1:8443", CA, "/metrics/chat-small")
    assert json.loads(allowed.stdout)["status"] == 200 and "port 18001" in json.loads(allowed.stdout)["body"]
    # The same request to (and so from) the host's network address is not from an allowed network.
    refused = host.run("python3 -c %s %s %s %s '' ''", CLIENT, "https://198.51.100.30:8443", CA, "/metrics/chat-small")
    assert json.loads(refused.stdout)["status"] == 403
    assert json.loads(json.loads(refused.stdout)["body"])["error"]["type"] == "permission_error"
    unknown = host.run("python3 -c %s %s %s %s '' ''", CLIENT, "https://127.0.0.1:8443", CA, "/metrics/no-such-model")
    assert json.loads(unknown.stdout)["status"] == 404
