#!/usr/bin/env bash
# Migration transport benchmark (issue 5), side by side in one run on loopback:
#   1. zstd -1 --single-thread compressing the file alone            (the compression ceiling)
#   2. transport full copy, zstd pinned at level 1, then adaptive       (two novacrond, TLS 1.3 mTLS)
#   3. rsync to a local rsync daemon, full copy
#   4. socat: a plain uncompressed socket copy                          (the I/O ceiling)
#   5. delta copy (destination holds the original, 2 % of 4 KiB blocks changed):
#      transport against rsync --no-whole-file at its default block size and with -B 4096,
#      then both updating the destination in place (--in-place / rsync --inplace -B 4096)
#   6. with --capped: 100 Mbit/s, transport adaptive and uncompressed against pv | socat
# Each row is the median of RUNS runs, tools alternating, page cache warm and flushed of dirty
# pages before each run (`sync`). Transport times are
# the sender's elapsed_ms (request to verified result, connection set-up included); tool
# times are wall clock. CPU = user + system seconds of both novacrond during the run.
#
# Usage: scripts/bench-transport.sh [BUILD_DIR] [RUNS] [--capped]   (defaults: build 3)
#        SIZE_MIB=1024 CAPPED_MIB=256 change the file sizes. DST_FS=xfs puts the receiving
#        side (node-b's transfers root and the rsync module) on an XFS file system with
#        reflinks, on a loop device made for the run (root; needs mkfs.xfs).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
RUNS=${2:-3}
CAPPED=""
[[ "${3:-}" == "--capped" || "${2:-}" == "--capped" ]] && CAPPED=1
[[ "$RUNS" == "--capped" ]] && RUNS=3
SIZE_MIB=${SIZE_MIB:-1024}
CAPPED_MIB=${CAPPED_MIB:-256}

missing=()
for tool in rsync socat pv; do command -v "$tool" > /dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  echo "bench-transport: installing ${missing[*]} (no service started)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
[[ -x "$BUILD/bin/novacrond" ]] || { echo "bench-transport: build $BUILD first (scripts/test.sh)" >&2; exit 1; }
cmake --build "$BUILD" --target transport_datagen > /dev/null
DATAGEN=$(find "$BUILD" -name transport_datagen -type f -perm -u+x | head -1)
CLI="$BUILD/bin/novacron"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/novacron-bench-transport-XXXXXX")
PIDS=()
MOUNTED=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  [[ -n "$MOUNTED" ]] && umount "$MOUNTED"
  rm -rf "$WORK"
}
trap cleanup EXIT

# Where the receiving side writes: node-b's transfers root and the rsync module.
DEST=$WORK
if [[ "${DST_FS:-}" == xfs ]]; then
  truncate -s 12G "$WORK/xfs.img"  # sparse; the runs keep up to ~7 GiB of files
  mkfs.xfs -q -m reflink=1 "$WORK/xfs.img"
  mkdir -p "$WORK/xfs"
  mount -o loop "$WORK/xfs.img" "$WORK/xfs"
  MOUNTED=$WORK/xfs
  DEST=$WORK/xfs
fi
B=$DEST/root-node-b
RSYNC_DIR=$DEST/rsync

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- two nodes ------------------------------------------------------------------------------
"$CLI" cert init --dir "$WORK/ca" > /dev/null
for n in node-a node-b; do "$CLI" cert issue "$n" --ca-dir "$WORK/ca" --out "$WORK/certs" > /dev/null; done
declare -A API TPORT URL TOKEN PID
TPORT[node-a]=$(free_port)
TPORT[node-b]=$(free_port)
start_node() {
  local name=$1 peer=$2
  local root="$WORK/root-$name"
  [[ $name == node-b ]] && root=$B
  mkdir -p "$root"
  cat > "$WORK/$name.json" <<JSON
{"node": {"name": "$name", "transport": "127.0.0.1:${TPORT[$name]}"},
 "data_dir": "$WORK/data-$name", "listen": {"address": "127.0.0.1", "port": 0},
 "log": {"level": "warn"}, "transfers": {"root": "$root"},
 "cluster": {"ca": "$WORK/ca/ca.crt", "cert": "$WORK/certs/$name.crt", "key": "$WORK/certs/$name.key",
   "probe_interval_seconds": 3600,
   "peers": [{"name": "$peer", "api": "https://127.0.0.1:1", "transport": "127.0.0.1:${TPORT[$peer]}"}]},
 "plugins": {"load": [{"id": "io.novacron.auth.token", "required": true},
   {"id": "io.novacron.transport", "required": true, "config": {"durability": "${DURABILITY:-none}"}}]}}
JSON
  "$BUILD/bin/novacrond" --config "$WORK/$name.json" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  PID[$name]=$!
  PIDS+=("$!")
  for _ in $(seq 100); do grep -q "novacrond ready" "$WORK/$name.out" && break; sleep 0.1; done
  URL[$name]=$(sed -n 's/.*listening on \(https:\/\/[0-9.:]*\).*/\1/p' "$WORK/$name.out")
  TOKEN[$name]=$(cat "$WORK/data-$name/admin.token")
}
start_node node-b node-a
start_node node-a node-b
nc_a() {
  NOVACRON_URL=${URL[node-a]} NOVACRON_TOKEN=${TOKEN[node-a]} NOVACRON_CA=$WORK/ca/ca.crt \
    "$CLI" "$@" --server-name node-a
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/${PID[node-a]}/stat" "/proc/${PID[node-b]}/stat" | paste -sd+ | bc; }
TICK=$(getconf CLK_TCK)

# --- data -----------------------------------------------------------------------------------
A=$WORK/root-node-a
echo "generating ${SIZE_MIB} MiB of test data (40% zeros, 40% text, 20% random) and a 2% mutated copy..." >&2
"$DATAGEN" "$A/data.img" "$SIZE_MIB" 1
CHANGED_BLOCKS=$("$DATAGEN" --mutate "$A/data.img" "$A/data2.img" 0.02 2)
CHANGED_BYTES=$((CHANGED_BLOCKS * 4096))
BYTES=$(stat -c %s "$A/data.img")
ZSTD_RATIO=$(python3 -c "print(round($BYTES / $(zstd -1 --single-thread -c "$A/data.img" | wc -c), 2))")

mkdir -p "$RSYNC_DIR"
RPORT=$(free_port)
cat > "$WORK/rsyncd.conf" <<CONF
pid file = $WORK/rsyncd.pid
log file = $WORK/rsyncd.log
use chroot = no
uid = 0
gid = 0
[bench]
  path = $RSYNC_DIR
  read only = no
CONF
rsync --daemon --no-detach --address 127.0.0.1 --port "$RPORT" --config "$WORK/rsyncd.conf" &
PIDS+=("$!")
sleep 0.5

# Inputs in the page cache, and no dirty pages left from the previous run: each run then
# pays for its own writes only (writeback of earlier runs would throttle whichever came next).
warm() {
  cat "$@" > /dev/null
  sync
}
now() { date +%s.%N; }

# --- one run of each ---------------------------------------------------------------------------
RESULTS=$WORK/results.tsv  # name seconds wire_bytes cpu_seconds
: > "$RESULTS"
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RESULTS"; }

run_zstd() {
  warm "$A/data.img"
  local t0 t1; t0=$(now)
  zstd -1 --single-thread -q -c "$A/data.img" > /dev/null
  t1=$(now)
  record zstd "$(echo "$t1 - $t0" | bc)" 0 0
}

# transport NAME SOURCE TARGET [send flags...]
run_transport() {
  local name=$1 src=$2 target=$3
  shift 3
  warm "$A/$src"
  local c0 c1 out
  c0=$(cpu_ticks)
  out=$(nc_a transfer send "$A/$src" --to "node-b:$target" --json "$@")
  c1=$(cpu_ticks)
  python3 - "$name" "$out" "$(echo "($c1 - $c0) / $TICK" | bc -l)" >> "$RESULTS" <<'PY'
import json, sys
name, out, cpu = sys.argv[1], json.loads(sys.argv[2])["transfer"], float(sys.argv[3])
assert out["state"] == "succeeded", out
s = out["stats"]
print(f'{name}\t{s["elapsed_ms"] / 1000:.3f}\t{s["wire_bytes_sent"] + s["wire_bytes_received"]}\t{cpu:.2f}')
PY
}

run_rsync() {
  local name=$1 src=$2 target=$3
  shift 3
  warm "$A/$src"
  local t0 t1 out
  t0=$(now)
  out=$(rsync -a --stats "$@" "$A/$src" "rsync://127.0.0.1:$RPORT/bench/$target")
  t1=$(now)
  local sent recv
  sent=$(echo "$out" | sed -n 's/^Total bytes sent: \([0-9,]*\).*/\1/p' | tr -d ,)
  recv=$(echo "$out" | sed -n 's/^Total bytes received: \([0-9,]*\).*/\1/p' | tr -d ,)
  record "$name" "$(echo "$t1 - $t0" | bc)" "$((sent + recv))" 0
}

run_socat() {
  warm "$A/data.img"
  local port t0 t1
  port=$(free_port)
  rm -f "$WORK/sock.img"
  socat -u "TCP-LISTEN:$port,reuseaddr,bind=127.0.0.1" "CREATE:$WORK/sock.img" &
  local listener=$!
  sleep 0.2
  t0=$(now)
  socat -u "OPEN:$A/data.img" "TCP:127.0.0.1:$port"
  wait "$listener"
  t1=$(now)
  record socat "$(echo "$t1 - $t0" | bc)" "$BYTES" 0
}

for run in $(seq "$RUNS"); do
  echo "run $run of $RUNS..." >&2
  run_zstd
  rm -f "$B/full.img"
  run_transport transport-level1 data.img full.img --compression 1 --id "full-l1-$run"
  rm -f "$B/full.img"
  run_transport transport-adaptive data.img full.img --compression adaptive --id "full-ad-$run"
  rm -f "$RSYNC_DIR/full.img"
  run_rsync rsync-full data.img full.img
  run_socat
  # Delta: the destination holds the original (placed by cp, so no index of it exists).
  cp "$A/data.img" "$B/delta.img"
  run_transport transport-delta data2.img delta.img --compression 1 --id "delta-$run"
  for b in default 4096; do
    cp "$A/data.img" "$RSYNC_DIR/delta.img"
    touch -d '2020-01-01' "$RSYNC_DIR/delta.img"
    if [[ $b == default ]]; then
      run_rsync rsync-delta-default data2.img delta.img --no-whole-file
    else
      run_rsync rsync-delta-b4096 data2.img delta.img --no-whole-file -B 4096
    fi
  done
  # In place: only changed blocks are written (no temp file), against rsync --inplace.
  cp "$A/data.img" "$B/inplace.img"
  run_transport transport-delta-inplace data2.img inplace.img --compression 1 --in-place --id "inplace-$run"
  cp "$A/data.img" "$RSYNC_DIR/inplace.img"
  touch -d '2020-01-01' "$RSYNC_DIR/inplace.img"
  run_rsync rsync-inplace-b4096 data2.img inplace.img --no-whole-file --inplace -B 4096
done

if [[ -n "$CAPPED" ]]; then
  echo "capped runs at 100 Mbit/s on the first $CAPPED_MIB MiB (one run each)..." >&2
  head -c "$((CAPPED_MIB << 20))" "$A/data.img" > "$A/capped.img"
  run_transport capped-adaptive capped.img capped1.img --compression adaptive --bwlimit 100Mbit --id capped-ad
  run_transport capped-off capped.img capped2.img --compression off --bwlimit 100Mbit --id capped-off
  warm "$A/capped.img"
  port=$(free_port)
  socat -u "TCP-LISTEN:$port,reuseaddr,bind=127.0.0.1" "CREATE:$WORK/sock2.img" &
  listener=$!
  sleep 0.2
  t0=$(now)
  pv -qL 12500000 "$A/capped.img" | socat -u - "TCP:127.0.0.1:$port"
  wait "$listener"
  t1=$(now)
  record capped-pv-socat "$(echo "$t1 - $t0" | bc)" "$((CAPPED_MIB << 20))" 0
fi

# --- report ---------------------------------------------------------------------------------
python3 - "$RESULTS" "$BYTES" "$CHANGED_BYTES" "$ZSTD_RATIO" "$SIZE_MIB" "$CAPPED_MIB" <<'PY'
import statistics, sys
from collections import defaultdict
path, size, changed, zratio, size_mib, capped_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
rows = defaultdict(list)
for line in open(path):
    name, sec, wire, cpu = line.rstrip("\n").split("\t")
    rows[name].append((float(sec), int(wire), float(cpu)))
med = {n: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v), statistics.median(r[2] for r in v)) for n, v in rows.items()}
mb = lambda b: b / 1e6
import os
print(f"data: {size_mib} MiB, zstd -1 ratio {zratio}; delta: {changed // 4096} blocks changed ({mb(changed):.1f} MB); "
      f"receiving file system: {os.environ.get('DST_FS') or 'the work folder (ext4 here)'}")
print(f"{'run':24} {'seconds':>8} {'MB/s':>8} {'wire MB':>9} {'CPU s':>6}  ratio")
def line(name, peer=None, note=""):
    if name not in med: return
    s, w, c = med[name]
    nbytes = (int(capped_mib) << 20) if name.startswith("capped") else size
    ratio = ""
    if peer and peer in med:
        ratio = f"{med[peer][0] / s:.2f}x the speed of {peer}"
    print(f"{name:24} {s:8.3f} {mb(nbytes) / s:8.1f} {mb(w):9.1f} {c:6.2f}  {ratio}{note}")
line("zstd")
line("transport-level1", "zstd", "  (target >= 0.8x)")
line("transport-adaptive", "zstd")
line("rsync-full", "zstd")
line("socat", "zstd")
line("transport-delta")
fast_rsync = min((n for n in ("rsync-delta-default", "rsync-delta-b4096") if n in med), key=lambda n: med[n][0], default=None)
line("rsync-delta-default", "transport-delta")
line("rsync-delta-b4096", "transport-delta")
line("transport-delta-inplace")
line("rsync-inplace-b4096", "transport-delta-inplace")
if fast_rsync and "transport-delta" in med:
    print(f"delta, new file + rename: transport {med[fast_rsync][0] / med['transport-delta'][0]:.2f}x faster than the faster rsync ({fast_rsync}) (target >= 5x); "
          f"wire {med['transport-delta'][1] / changed:.2f}x the changed bytes (target <= 1.2x)")
if "transport-delta-inplace" in med and "rsync-inplace-b4096" in med:
    print(f"delta, in place: transport {med['rsync-inplace-b4096'][0] / med['transport-delta-inplace'][0]:.2f}x faster than rsync --inplace -B 4096; "
          f"{med[fast_rsync][0] / med['transport-delta-inplace'][0]:.2f}x faster than the faster rsync without --inplace; "
          f"wire {med['transport-delta-inplace'][1] / changed:.2f}x the changed bytes")
line("capped-adaptive", "capped-off")
line("capped-off", "capped-pv-socat")
line("capped-pv-socat")
PY
