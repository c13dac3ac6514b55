#!/usr/bin/env bash
# API benchmark (issue 3): wrk at 64 connections for 30 s against
#   1. novacrond  GET /v1/plugins   authenticated with a bearer token (io.novacron.auth.token)
#   2. novacrond  GET /v1/health    unauthenticated
#   3. nginx      GET /plugins.json the same JSON body as (1), served as a static file
# all over loopback in the same run, and prints requests/s, p99 and errors with ratios to
# nginx. Usage: scripts/bench-api.sh [BUILD_DIR] [DURATION]   (defaults: build 30s)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DURATION=${2:-30s}
CONNECTIONS=64

for tool in wrk nginx; do
  if ! command -v "$tool" > /dev/null; then
    echo "bench-api: installing wrk and nginx-light (no service started)" >&2
    added_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && added_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk nginx-light > /dev/null
    [[ -n "$added_policy" ]] && rm -f /usr/sbin/policy-rc.d
    break
  fi
done
[[ -x "$BUILD/bin/novacrond" ]] || { echo "bench-api: build $BUILD first (scripts/test.sh)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/novacron-bench-XXXXXX")
NOVA_PID="" NGINX_PID=""
cleanup() {
  [[ -n "$NOVA_PID" ]] && kill "$NOVA_PID" 2> /dev/null || true
  [[ -n "$NGINX_PID" ]] && kill "$NGINX_PID" 2> /dev/null || true
  wait 2> /dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NOVA_PORT=$(free_port)
NGINX_PORT=$(free_port)

cat > "$WORK/novacrond.json" <<JSON
{"data_dir": "$WORK/data", "listen": {"address": "127.0.0.1", "port": $NOVA_PORT},
 "log": {"level": "warn"},
 "plugins": {"load": [{"id": "io.novacron.auth.token", "required": true},
   {"id": "io.novacron.policy.resource-fit"}, {"id": "io.novacron.policy.binpack"},
   {"id": "io.novacron.policy.spread"}]}}
JSON
"$BUILD/bin/novacrond" --config "$WORK/novacrond.json" > "$WORK/novacrond.out" 2> "$WORK/novacrond.err" &
NOVA_PID=$!
for _ in $(seq 100); do grep -q "novacrond ready" "$WORK/novacrond.out" && break; sleep 0.1; done
TOKEN=$(cat "$WORK/data/admin.token")

mkdir -p "$WORK/www" "$WORK/nginx"
chmod 755 "$WORK" "$WORK/www"  # nginx workers run as www-data
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$NOVA_PORT/v1/plugins" > "$WORK/www/plugins.json"
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { root $WORK/www; default_type application/json; }
  }
}
CONF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX_PID=$!
sleep 0.5

run_wrk() {  # name url [header]
  local out
  if [[ -n "${3:-}" ]]; then
    out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "$3" "$2")
  else
    out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$2")
  fi
  local rps p99 non2xx sock
  rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
  p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<< "$out")
  sock=$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' <<< "$out")
  echo "$1|$rps|$p99|${non2xx:-0}|${sock:-0}"
}

echo "wrk -t2 -c$CONNECTIONS -d$DURATION, loopback, $(nproc) cores; body of /v1/plugins: $(wc -c < "$WORK/www/plugins.json") bytes"
results=()
results+=("$(run_wrk "novacrond GET /v1/plugins (bearer token)" "http://127.0.0.1:$NOVA_PORT/v1/plugins" "Authorization: Bearer $TOKEN")")
results+=("$(run_wrk "novacrond GET /v1/health" "http://127.0.0.1:$NOVA_PORT/v1/health")")
results+=("$(run_wrk "nginx static plugins.json" "http://127.0.0.1:$NGINX_PORT/plugins.json")")
nginx_rps=$(cut -d'|' -f2 <<< "${results[2]}")
printf '%-44s %12s %10s %8s %8s %10s\n' "target" "requests/s" "p99" "non-2xx" "sock-err" "vs nginx"
for r in "${results[@]}"; do
  IFS='|' read -r name rps p99 non2xx sock <<< "$r"
  ratio=$(python3 -c "print(f'{float($rps)/float($nginx_rps):.2f}x')")
  printf '%-44s %12s %10s %8s %8s %10s\n' "$name" "$rps" "$p99" "$non2xx" "$sock" "$ratio"
done
