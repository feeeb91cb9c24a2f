"""The chart's model fetcher (files/fetch-model.sh) against a store on 127.0.0.1 holding the tiny model:
it copies a model whose SHA256SUMS has the stack's digest, and refuses a wrong digest or a changed file."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from sovkit.serving import CHART_DIR, tinymodel

SCRIPT = CHART_DIR / "files" / "fetch-model.sh"
pytestmark = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("sha256sum")),
                                reason="the fetcher test needs curl and sha256sum (Debian: curl, coreutils)")


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    revision = tinymodel.build(root / "tiny-chat")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/tiny-chat", revision
    server.shutdown()
    server.server_close()


def fetch(tmp_path: Path, source: str, revision: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "MODELS_DIR": str(tmp_path / "models"), "MODEL_NAME": "tiny-chat",
           "MODEL_SOURCE": source, "MODEL_REVISION": revision, "S3_ENDPOINT": ""}
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_fetches_and_verifies(tmp_path, store):
    root, source, revision = store
    result = fetch(tmp_path, source, revision)
    assert result.returncode == 0, result.stderr
    copied = tmp_path / "models" / "tiny-chat"
    for path in (root / "tiny-chat").iterdir():
        if path.name == tinymodel.SIGNATURE:  # not in SHA256SUMS: fetched beside the folder only when signed
            assert not (copied / path.name).exists()
            continue
        assert (copied / path.name).read_bytes() == path.read_bytes()


def test_refuses_another_revision(tmp_path, store):
    _, source, _ = store
    result = fetch(tmp_path, source, "sha256:" + "0" * 64)
    assert result.returncode != 0
    assert not (tmp_path / "models" / "tiny-chat" / "model.safetensors").exists()


def test_refuses_a_changed_file(tmp_path, store):
    root, source, revision = store
    (root / "tiny-chat" / "config.json").write_text("{}\n")
    result = fetch(tmp_path, source, revision)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr
