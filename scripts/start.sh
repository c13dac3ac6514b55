#!/usr/bin/env bash
# Quick start, command 1: installs the dependencies, builds NovaCron, installs it under
# /usr/local and starts novacrond in the foreground on its embedded default config
# (standalone, SQLite in /var/lib/novacron, the bundled token provider, policies and both
# hypervisor drivers loaded).
# Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build --target novacrond novacron novacron-plugin-inspect auth_token auth_mtls driver_kvm driver_lxc transport \
  resource_fit binpack spread affinity topology workload_aware migration_cost constraints
cmake --install build --prefix /usr/local > /dev/null
echo "installed novacrond, novacron and the bundled plugins under /usr/local"
exec /usr/local/bin/novacrond --config /usr/local/etc/novacron/novacrond.json "$@"
