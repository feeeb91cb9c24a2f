#!/usr/bin/env bash
# Install, idempotently, what the podman test hosts need on a Debian 12 machine (CI or laptop).
#
# - podman 4.3 + runc: crun 1.8 cannot run systemd in a hybrid cgroup setup, so the kit's
#   containers.conf selects runc (see sovkit/hosts/podman.py).
# - netavark + aardvark-dns + iptables: podman's network backend (netavark 1.4 drives its
#   isolation rules through iptables-nft) for the internal test networks.
# - mmdebstrap: builds the Debian 12 host image from the Debian mirror.
# - dpkg-dev: dpkg-scanpackages, for the local file:// apt repository the hosts install from.
# - nftables: lets the kit remove the empty netavark tables it leaves behind.
# - apt-utils (apt-ftparchive) + gnupg: index and sign the rehearsal's in-country Debian mirror
#   (sovkit/rehearse/mirror.py). apt-utils is not pinned: it must match the machine's own apt version.
# - openssl: the rehearsal tests' throwaway site CA and server certificate.
# - openssh-client: Ansible and `sovkit verify` reach a rehearsal's hosts over SSH (ssh, ssh-keygen).
# Versions are those of Debian 12 (bookworm); the roles and tests were proven with them.
set -euo pipefail

packages=(
  "podman=4.3.1+ds1-8+deb12u1+b3"
  "runc=1.1.5+ds1-1+deb12u1"
  "netavark=1.4.0-3"
  "aardvark-dns=1.4.0-3"
  "iptables=1.8.9-2"
  "mmdebstrap=1.3.5-7"
  dpkg-dev
  nftables
  apt-utils
  gnupg
  openssl
  openssh-client
  zstd
  iproute2
)

missing=()
for spec in "${packages[@]}"; do
  name="${spec%%=*}"
  if ! dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$spec")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "host-deps: all present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "host-deps: needs root to install: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# The Debian mirror is the only network here: retry its transient failures instead of failing CI.
apt_opts=(-o Acquire::Retries=5)
apt-get "${apt_opts[@]}" update -qq
# Pinned versions may have moved on in the archive: fall back to the candidate with a warning.
if ! apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}"; then
  echo "host-deps: pinned install failed, installing current bookworm candidates" >&2
  apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]%%=*}"
fi
echo "host-deps: installed ${missing[*]}"
