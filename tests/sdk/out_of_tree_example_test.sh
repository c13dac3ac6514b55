#!/usr/bin/env bash
# The third-party path end to end: install the SDK from the build tree into a temporary
# prefix, build sdk/examples/binpack-lite against it out of tree, check that
# `cmake --install` copies the plugin byte for byte, package it as .tar.zst, install it into a
# host's data dir with the CLI, start novacrond with it required, and see it loaded.
# Usage: out_of_tree_example_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
SRC=$1
BUILD=$2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/novacron-sdk-test-XXXXXX")
DAEMON_PID=""
cleanup() {
  if [[ -n "$DAEMON_PID" ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then kill -KILL "$DAEMON_PID" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$WORK"/*.log; do [[ -f $f ]] && { echo "--- $f" >&2; cat "$f" >&2; }; done; exit 1; }

echo "== install the SDK into $WORK/prefix"
cmake --install "$BUILD" --prefix "$WORK/prefix" --component sdk > "$WORK/install.log" || fail "SDK install"
[[ -f "$WORK/prefix/include/novacron/sdk/scheduling_policy.hpp" ]] || fail "SDK headers not installed"

echo "== build the example out of tree"
cmake -S "$SRC/sdk/examples/binpack-lite" -B "$WORK/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$WORK/prefix" > "$WORK/configure.log" 2>&1 || fail "configure against the installed SDK"
cmake --build "$WORK/build" > "$WORK/build.log" 2>&1 || fail "build"
PLUGIN="$WORK/build/plugins/com.example.policy.binpack-lite/1.0.0"
[[ -f "$PLUGIN/plugin.json" && -f "$PLUGIN/libbinpack_lite.so" ]] || fail "plugin folder not produced"

echo "== cmake --install keeps the library byte-identical (no RPATH rewrite)"
cmake --install "$WORK/build" --prefix "$WORK/inst" > "$WORK/install2.log" || fail "plugin install"
pinned=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$PLUGIN/plugin.json")
installed=$(sha256sum "$WORK/inst/lib/novacron/plugins/com.example.policy.binpack-lite/1.0.0/libbinpack_lite.so" | cut -d' ' -f1)
[[ "$pinned" == "$installed" ]] || fail "installed library hash $installed differs from manifest $pinned"

echo "== validate, package and install into a host"
"$BUILD/bin/novacron" plugin validate "$PLUGIN" > "$WORK/validate.log" || fail "plugin validate"
grep -q "verdict: valid" "$WORK/validate.log" || fail "validate verdict"
tar --zstd -cf "$WORK/binpack-lite.tar.zst" -C "$WORK/build/plugins/com.example.policy.binpack-lite" 1.0.0
"$BUILD/bin/novacron" plugin install --data-dir "$WORK/data" "$WORK/binpack-lite.tar.zst" > "$WORK/plugin-install.log" \
  || fail "novacron plugin install"

cat > "$WORK/novacrond.json" <<JSON
{
  "node": {"name": "sdk-test"},
  "data_dir": "$WORK/data",
  "listen": {"address": "127.0.0.1", "port": 0},
  "plugins": {"load": [
    {"id": "com.example.policy.binpack-lite", "required": true, "config": {"headroom_mib": 512}}
  ]}
}
JSON

echo "== start novacrond with the example required"
"$BUILD/bin/novacrond" --config "$WORK/novacrond.json" > "$WORK/daemon-out.log" 2> "$WORK/daemon-err.log" &
DAEMON_PID=$!
for _ in $(seq 1 200); do
  grep -q "novacrond ready" "$WORK/daemon-out.log" && break
  kill -0 "$DAEMON_PID" 2>/dev/null || fail "novacrond exited during start-up"
  sleep 0.05
done
grep -q "novacrond ready" "$WORK/daemon-out.log" || fail "novacrond not ready in 10 s"
grep -q "plugin loaded id=com.example.policy.binpack-lite version=1.0.0" "$WORK/daemon-err.log" || fail "example not loaded"
grep -q "binpack-lite ready headroom_mib=512" "$WORK/daemon-err.log" || fail "example did not receive its config"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "novacrond did not stop cleanly"
DAEMON_PID=""
echo "PASS: out-of-tree example built, installed and loaded"
