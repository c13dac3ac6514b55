#!/usr/bin/env bash
# Installs NovaCron's build and test dependencies from Debian 12's archive.
# Idempotent: packages already present are skipped, so a second run costs ~1 s.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git
  libboost1.81-dev libboost-filesystem1.81-dev libboost-program-options1.81-dev
  nlohmann-json3-dev libsqlite3-dev libssl-dev libzstd-dev libxxhash-dev
  libspdlog-dev libfmt-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libexpected-dev libarchive-dev zstd clang-14 clang-tidy-14 libclang-rt-14-dev curl openssl
  prometheus
  libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
  lxc lxc-dev lxc-templates busybox-static cpio iproute2
  xfsprogs
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "hint: run as root (or with sudo) so that apt-get can install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages are installed for their tools only (promtool from prometheus, nginx for the
# benchmark): no service may be started by their install scripts. policy-rc.d tells
# invoke-rc.d so; one that the machine already has is left as it is.
policy=/usr/sbin/policy-rc.d
added_policy=""
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  added_policy=1
fi
trap '[[ -n "$added_policy" ]] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
