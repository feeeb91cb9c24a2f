#!/usr/bin/env bash
# Create (idempotently) the scanner's own virtual environment and print its checkov. checkov pins libraries the kit
# pins otherwise (cyclonedx-python-lib 7 against the kit's 11, packaging 23), so it cannot share the project's venv;
# it lives in the user's cache (~/.cache/sovkit/), made once per machine from PyPI at this exact version. It scans
# offline (--skip-download).
set -euo pipefail

PIN="checkov==3.3.30"
LOCK="$(dirname "$0")/checkov-requirements.txt"  # the whole environment pinned, checkov's dependencies included
VENV="${SOVKIT_CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sovkit/checkov-venv}"
STAMP="$VENV/.sovkit-ready-$(sha256sum "$LOCK" | cut -c1-16)"  # a new lock makes it again

if [[ -f "$STAMP" ]]; then
  echo "$VENV/bin/checkov"
  exit 0
fi
PYTHON="${PYTHON:-python3}"
mkdir -p "$(dirname "$VENV")"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV" >&2
fi
grep -qx "$PIN" "$LOCK" || { echo "$LOCK does not pin $PIN" >&2; exit 1; }
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$LOCK" >&2
"$VENV/bin/checkov" --version >&2
touch "$STAMP"
echo "$VENV/bin/checkov"
