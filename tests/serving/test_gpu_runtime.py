"""The NVIDIA runtime lock, installed from the bundle's wheels exactly as the vLLM role installs it, and the serve
arguments of every NVIDIA site and scenario checked by that runtime's own vLLM parser (the CUDA build; its parser
runs without a GPU). Left out of the default run for CI's time (about 4 GiB downloaded once, 8 GiB installed):
`pytest -m gpu_runtime tests/serving`. The default run checks the same arguments with the CPU build of the same
vLLM release (tests/unit/config/test_driver_and_runtime.py holds the two locks to one release)."""

from __future__ import annotations

import subprocess

import pytest
from vllm_helpers import launches, parse, vllm_env

from sovkit.config import runtime

pytestmark = [pytest.mark.gpu_runtime, pytest.mark.slow]


def test_the_installed_runtime_is_the_cuda_build_the_lock_says(nvidia_vllm_python):
    """torch reports the CUDA release validate reads from the lock (from its nvidia-cuda-runtime pin), and vLLM the
    release the lock pins."""
    probe = "import torch, vllm; print(torch.__version__, torch.version.cuda, vllm.__version__)"
    out = subprocess.run([nvidia_vllm_python, "-c", probe], capture_output=True, text=True, env=vllm_env(),
                         timeout=300, check=True).stdout.split()
    lock, cuda = runtime.vendor_lock("nvidia"), runtime.device_runtime("nvidia")
    # torch's own version carries its CUDA build as a local label (2.13.0+cu130)
    assert out == [f"{lock.version('torch')}+cu{cuda.release.replace('.', '')}", cuda.release, lock.version("vllm")]


def test_the_nvidia_runtime_accepts_every_nvidia_launch(nvidia_vllm_python):
    cases = launches("nvidia")
    out = parse(nvidia_vllm_python, [launch.args for _, launch in cases])
    assert len(out["results"]) == len(cases) >= 5
    for (label, launch), result in zip(cases, out["results"], strict=True):
        assert result["ok"], f"{label}: vLLM refused {launch.args}: {result.get('error')}"
        assert result["parsed"]["tensor_parallel_size"] == launch.plan.tensor_parallel, label
        assert result["parsed"]["port"] == launch.port, label
