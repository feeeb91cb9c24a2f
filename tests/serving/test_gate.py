"""The local-language quality gate run for real: lm-evaluation-harness through an OpenAI-compatible endpoint on the
local stack's evaluation sets. Against vLLM serving the random tiny model (the `server` fixture) it measures 0 in
both languages, so a real threshold withholds the model from its tenants and a zero threshold grants it; against an
answer key served over TLS by the site's kind of private CA, it passes one language and fails the other."""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from vllm_helpers import SERVED

from sovkit.config import load_stack
from sovkit.gate.run import Endpoint, run_gate
from sovkit.rehearse.pki import ensure_ca, server_certificate
from sovkit.render.gate import verdicts, withheld_grants
from sovkit.serving import evalsets
from sovkit.stacks import project_root

pytestmark = pytest.mark.slow
LOCAL = project_root() / "stacks" / "Pulumi.local.yaml"


def local_site(tmp_path: Path, thresholds: str):
    """The local stack with other thresholds for the gated model (the shipped one has {en: 0, sw: 0})."""
    text = LOCAL.read_text().replace("thresholds: {en: 0, sw: 0}", f"thresholds: {thresholds}")
    (tmp_path / "Pulumi.local.yaml").write_text(text)
    return load_stack(tmp_path / "Pulumi.local.yaml")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """The model store as this machine sees it, holding the sets the bundle makes."""
    root = tmp_path_factory.mktemp("store")
    evalsets.build(root / evalsets.FOLDER)
    return root


def test_the_tiny_model_fails_a_real_threshold_and_passes_a_zero_one(server, store, tmp_path):
    real = local_site(tmp_path, "{en: 0.5, sw: 0.5}")
    started = time.monotonic()
    report = run_gate(real, SERVED, Endpoint(server["base"], server["key"]), store, tmp_path / "gate")
    print(f"one gate run of {SERVED} ({sum(s.items for s in report.sets)} questions): "
          f"{time.monotonic() - started:.1f} s")
    assert report.error is None, report.error
    assert [(s.name, s.items) for s in report.sets] == [("everyday-en", 30), ("everyday-sw", 30)]
    assert not report.passed
    assert [v.reason for v in report.verdicts] == ["en: exact_match 0.00 < threshold 0.50",
                                                   "sw: exact_match 0.00 < threshold 0.50"]
    tenants = real.tenants_of(SERVED)
    assert [(w.tenant, w.model) for w in withheld_grants(real, {SERVED: report})] == [(t, SERVED) for t in tenants]

    shipped = load_stack(LOCAL)  # the same measurement against the stack's zero thresholds
    assert all(v.passed for v in verdicts(shipped, SERVED, report))
    assert withheld_grants(shipped, {SERVED: report}) == []
    assert json.loads(report.model_dump_json())["verdicts"][1]["reason"].startswith("sw: exact_match")


def test_a_refused_key_fails_closed_and_the_log_keeps_no_key(server, store, tmp_path):
    wrong = "not-the-key-" + server["key"][:8]
    report = run_gate(load_stack(LOCAL), SERVED, Endpoint(server["base"], wrong), store, tmp_path)
    assert not report.passed and report.sets == []
    assert "the endpoint answered 401" in report.verdicts[0].reason
    log = (tmp_path / "harness.log").read_text()
    assert "401" in log and wrong not in log


class AnswerKey(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint that knows the English answers and none of the Swahili ones."""

    answers: ClassVar[dict[str, str]] = {row["prompt"]: row["answer"] for row in evalsets.items("en")}
    key = "answer-key-test-key"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("Authorization") != f"Bearer {self.key}":
            self._send(401, {"error": "Unauthorized"})
            return
        prompt = body["messages"][-1]["content"]
        self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop", "message": {
                             "role": "assistant", "content": self.answers.get(prompt, "sijui")}}]})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args) -> None:
        pass


def test_each_language_is_judged_on_its_own_over_tls_from_a_private_ca(store, tmp_path):
    ca = ensure_ca(tmp_path / "pki", "local")
    chain, key = server_certificate(tmp_path / "pki", ["localhost"], ["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), AnswerKey)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        endpoint = Endpoint(f"https://127.0.0.1:{httpd.server_address[1]}/v1", AnswerKey.key, ca_file=ca)
        report = run_gate(local_site(tmp_path, "{en: 0.9, sw: 0.5}"), SERVED, endpoint, store, tmp_path / "gate")
    finally:
        httpd.shutdown()
    assert report.error is None, report.error
    assert [(v.language, v.passed, v.reason) for v in report.verdicts] == [
        ("en", True, "en: exact_match 1.00 >= threshold 0.90"),
        ("sw", False, "sw: exact_match 0.00 < threshold 0.50")]
