#!/usr/bin/env bash
# NovaCron's overhead per VM operation (issue 4): create+start and stop+delete through the
# REST API against the same operations made directly with libvirt's C API by
# vm_overhead_benchmark (or with liblxc by lxc_overhead_benchmark), in the same run.
#   test   libvirt's in-process test:///default (novacrond's own and the benchmark's)
#   guest  the tiny TCG guest on a libvirtd of the benchmark's own (root)
#   lxc    a busybox container (root), each side in its own lxcpath
# Usage: scripts/bench-vm-ops.sh [BUILD_DIR] [test|guest|lxc] [COUNT]   (defaults: build test 50)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODE=${2:-test}
COUNT=${3:-50}
[[ -x "$BUILD/bin/vm_overhead_benchmark" ]] || { echo "bench-vm-ops: build $BUILD first (benchmarks on)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/novacron-bench-ops-XXXXXX")
NOVA_PID="" NODE=""
cleanup() {
  [[ -n "$NOVA_PID" ]] && kill "$NOVA_PID" 2> /dev/null || true
  wait 2> /dev/null || true
  [[ -n "$NODE" ]] && bash tests/support/libvirtd-node.sh stop "$NODE" || true
  rm -rf "$WORK" /tmp/novacron-bench-direct
  # liblxc leaves the (empty) monitor cgroups of the direct containers behind.
  for d in /sys/fs/cgroup/lxc.monitor.direct-* /sys/fs/cgroup/*/lxc.monitor.direct-*; do
    [[ -d "$d" ]] && rmdir "$d" 2> /dev/null || true
  done
}
trap cleanup EXIT
mkdir -p "$WORK/images" /tmp/novacron-bench-direct
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

DRIVER_JSON=""
if [[ "$MODE" == lxc ]]; then
  # The same init in both: a shell loop writing to the console, as a small service would.
  echo '{"driver": "lxc", "vcpus": 1, "memory_mib": 128, "network": "none",
         "container": {"template": "busybox", "init": ["/bin/sh", "-c", "while true; do echo tick; sleep 1; done"]}}' \
    > "$WORK/spec.json"
  DRIVER_JSON='{"id": "io.novacron.driver.lxc", "required": true, "config": {"state_poll_ms": 1000}}'
elif [[ "$MODE" == test ]]; then
  URI="test:///default"
  TYPE=test
  head -c 4096 /dev/zero > "$WORK/images/base.raw"
  echo '{"driver": "kvm", "vcpus": 1, "memory_mib": 128, "disks": [{"image": "base.raw", "format": "raw"}],
         "boot": {"from": "disk"}, "network": "none"}' > "$WORK/spec.json"
else
  GUEST=$(bash tests/guest/build-guest.sh "$BUILD/guest")
  cp "$GUEST/vmlinuz" "$GUEST/initrd.gz" "$WORK/images/"
  NODE="$WORK/libvirt"
  URI=$(bash tests/support/libvirtd-node.sh start "$NODE")
  TYPE=qemu
  echo '{"driver": "kvm", "vcpus": 1, "memory_mib": 128, "network": "none",
         "boot": {"from": "kernel", "kernel": "vmlinuz", "initrd": "initrd.gz", "cmdline": "console=ttyS0 quiet"}}' \
    > "$WORK/spec.json"
fi
if [[ -z "$DRIVER_JSON" ]]; then
  DRIVER_JSON="{\"id\": \"io.novacron.driver.kvm\", \"required\": true,
                \"config\": {\"uri\": \"$URI\", \"domain_type\": \"$TYPE\"}}"
fi
cat > "$WORK/novacrond.json" <<JSON
{"node": {"name": "bench"}, "data_dir": "$WORK/data", "listen": {"address": "127.0.0.1", "port": $PORT},
 "log": {"level": "warn"}, "vms": {"image_root": "$WORK/images", "reconcile_interval_seconds": 0},
 "plugins": {"load": [{"id": "io.novacron.auth.token", "required": true},
   $DRIVER_JSON]}}
JSON
"$BUILD/bin/novacrond" --config "$WORK/novacrond.json" > "$WORK/out" 2> "$WORK/err" &
NOVA_PID=$!
for _ in $(seq 100); do grep -q "novacrond ready" "$WORK/out" && break; sleep 0.1; done
grep -q "novacrond ready" "$WORK/out" || { cat "$WORK/err" >&2; exit 1; }

if [[ "$MODE" == lxc ]]; then
  echo "mode lxc (busybox template)"
  # The environment the driver gives its helper (templates run faster with LANG=C).
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C \
    "$BUILD/bin/lxc_overhead_benchmark" --url "http://127.0.0.1:$PORT" --token "$(cat "$WORK/data/admin.token")" \
    --spec "$WORK/spec.json" --lxcpath "$WORK/direct-lxc" --count "$COUNT"
  exit 0
fi
echo "mode $MODE ($URI, domain type $TYPE)"
"$BUILD/bin/vm_overhead_benchmark" --url "http://127.0.0.1:$PORT" --token "$(cat "$WORK/data/admin.token")" \
  --libvirt "$URI" --domain-type "$TYPE" --spec "$WORK/spec.json" --image-root "$WORK/images" --count "$COUNT"
