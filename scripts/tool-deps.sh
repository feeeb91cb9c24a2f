#!/usr/bin/env bash
# Install, idempotently, the Debian tools the test suite drives for real: promtool (package prometheus)
# checks and unit-tests the alert rules; amtool (package prometheus-alertmanager) checks the Alertmanager configuration
# sovkit renders; mtail runs the gateway's log program over recorded lines; `cloud-init schema` (package cloud-init) checks the user data sovkit
# gives OpenStack servers; qemu (packages qemu-system-x86, qemu-utils) boots the virtual machines of the VM tier
# (tests/vm); pango (package libpangoft2-1.0-0) lays out the printed compliance report for WeasyPrint; njs runs
# the gateway's script where it reads multipart forms. Versions are Debian 12's.
set -euo pipefail

packages=(prometheus prometheus-alertmanager mtail cloud-init qemu-system-x86 qemu-utils libpangoft2-1.0-0 njs)
missing=()
for name in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed" || missing+=("$name")
done
if ((${#missing[@]} == 0)); then
  echo "tool-deps: all present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if [[ " ${missing[*]} " == *" cloud-init "* ]]; then
  # Only its schema check is wanted here. Its package starts nothing, but at the next boot its systemd generator
  # would run cloud-init on this machine (host keys, users, network) unless this file exists. It is written only
  # where cloud-init was not installed, so a machine that relies on its own cloud-init keeps it.
  mkdir -p /etc/cloud
  touch /etc/cloud/cloud-init.disabled
fi
apt-get -o Acquire::Retries=5 update -qq
apt-get -o Acquire::Retries=5 install -y -qq --no-install-recommends "${missing[@]}"
# The packages start a Prometheus and an Alertmanager on this machine; the tests need only promtool and amtool.
systemctl disable --now prometheus prometheus-node-exporter prometheus-alertmanager 2>/dev/null || true
echo "tool-deps: installed ${missing[*]}"
