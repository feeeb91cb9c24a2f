#!/usr/bin/env bash
# Install, idempotently, what the benchmarks drive beyond the test tools: wrk, the load generator of
# bench/bench_up.py (Debian 12's package, pinned).
set -euo pipefail

want="wrk=4.1.0-3+b2"
if [[ "$(dpkg-query -W -f='${Status} ${Version}' wrk 2>/dev/null)" == "install ok installed ${want#wrk=}" ]]; then
  echo "bench-deps: all present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o Acquire::Retries=5 update -qq
apt-get -o Acquire::Retries=5 install -y -qq --no-install-recommends "$want"
echo "bench-deps: installed $want"
