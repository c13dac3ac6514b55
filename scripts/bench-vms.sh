#!/usr/bin/env bash
# VM inventory benchmark (issue 4): GET /v1/vms with 10,000 VMs in the inventory (kvm driver
# on libvirt's test:///default), p50/p99 of the first page (100 VMs, the default) and of a
# 1000-VM page, with wrk at 16 connections for DURATION, plus one full walk of the list
# with the CLI's pagination. The inventory is written straight into the state store
# (python3's sqlite3) while novacrond is stopped: the benchmark is about reading it.
# Usage: scripts/bench-vms.sh [BUILD_DIR] [DURATION] [COUNT]   (defaults: build 20s 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DURATION=${2:-20s}
COUNT=${3:-10000}
command -v wrk > /dev/null || { echo "bench-vms: needs wrk (scripts/bench-api.sh installs it)" >&2; exit 1; }
[[ -x "$BUILD/bin/novacrond" ]] || { echo "bench-vms: build $BUILD first" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/novacron-bench-vms-XXXXXX")
NOVA_PID=""
cleanup() {
  [[ -n "$NOVA_PID" ]] && kill "$NOVA_PID" 2> /dev/null || true
  wait 2> /dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/novacrond.json" <<JSON
{"node": {"name": "bench"}, "data_dir": "$WORK/data", "listen": {"address": "127.0.0.1", "port": $PORT},
 "log": {"level": "warn"}, "vms": {"reconcile_interval_seconds": 0},
 "plugins": {"load": [{"id": "io.novacron.auth.token", "required": true},
   {"id": "io.novacron.driver.kvm", "config": {"uri": "test:///default"}}]}}
JSON
start() {
  "$BUILD/bin/novacrond" --config "$WORK/novacrond.json" > "$WORK/out" 2> "$WORK/err" &
  NOVA_PID=$!
  for _ in $(seq 100); do grep -q "novacrond ready" "$WORK/out" && return 0; sleep 0.1; done
  echo "bench-vms: novacrond did not start" >&2; cat "$WORK/err" >&2; exit 1
}
start  # creates the state store and the admin token
kill "$NOVA_PID"; wait "$NOVA_PID" 2> /dev/null || true; NOVA_PID=""
python3 - "$WORK/data/state.db" "$COUNT" <<'PY'
import json, sqlite3, sys, uuid, time
db = sqlite3.connect(sys.argv[1])
now = int(time.time() * 1000)
rows = []
for i in range(int(sys.argv[2])):
    name = f"vm-{i:05d}"
    spec = {"name": name, "driver": "kvm", "vcpus": 1 + i % 4, "memory_mib": 512, "labels": {"tier": ["web", "db"][i % 2]}}
    rows.append((str(uuid.uuid4()), name, "default", "kvm", "bench", json.dumps(spec), "stopped", "", now, now))
db.executemany("INSERT INTO vms(id, name, tenant, driver, node, spec, state, state_reason, created_at, updated_at) "
               "VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
PY
start
TOKEN=$(cat "$WORK/data/admin.token")
URL="http://127.0.0.1:$PORT"

printf 'wrk -t2 -c16 -d%s, loopback, %s VMs in the inventory\n' "$DURATION" "$COUNT"
printf '%-42s %12s %10s %10s %8s\n' target requests/s p50 p99 errors
for target in "/v1/vms" "/v1/vms?limit=1000" "/v1/vms?label=tier=db"; do
  out=$(wrk -t2 -c16 -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "$URL$target")
  rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
  p50=$(awk '/ 50%/ {print $2}' <<< "$out")
  p99=$(awk '/ 99%/ {print $2}' <<< "$out")
  errors=$(awk '/Non-2xx/ {print $5} /Socket errors/ {print "sock"}' <<< "$out" | head -1)
  printf '%-42s %12s %10s %10s %8s\n' "GET $target" "$rps" "$p50" "$p99" "${errors:-0}"
done
start_walk=$(date +%s%N)
n=$(env -i PATH="$PATH" HOME="$WORK" "$BUILD/bin/novacron" --url "$URL" --token "$TOKEN" vm list --json |
  python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
end_walk=$(date +%s%N)
printf 'novacron vm list --json: %s VMs in %d ms (pages of 1000)\n' "$n" $(((end_walk - start_walk) / 1000000))
