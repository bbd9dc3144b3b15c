#!/usr/bin/env bash
# Counts the user-space work per proxied request of pingora-go and of nginx as a proxy, with
# valgrind's cachegrind: instructions, L1 data misses, and misses of a simulated last-level
# cache sized as this machine's L2 (512 KiB, 8-way; LL=size,ways,line to change it). Each
# proxy (one worker, GOMAXPROCS=1) serves 10,000 and then, in a second run, 30,000 requests
# for 1 KiB from an nginx origin (h2load --h1, CONNS connections, 50 by default); the
# difference of the two runs' totals over 20,000 requests leaves start-up and shutdown out.
# The kernel is not simulated: bytes it writes into a buffer count as cold when the proxy
# reads them. Timing varies from run to run; these counts move by about 1 % (instructions)
# and ±5 (L2 misses). See docs/performance.md, "Where it stands (seventh session)".
#
# Needs valgrind, nginx and h2load (nghttp2-client). Run from the repository: bash bench/cachegrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LL=${LL:-524288,8,64}
CONNS=${CONNS:-50}
for tool in valgrind nginx h2load curl; do
  command -v "$tool" >/dev/null || { echo "cachegrind.sh needs $tool" >&2; exit 1; }
done
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

chmod 755 "$dir"  # nginx workers run as another user
head -c 1024 /dev/urandom > "$dir/1k"
chmod 644 "$dir/1k"
cat > "$dir/origin.conf" <<EOF
worker_processes 1; daemon off; pid $dir/origin.pid; error_log $dir/origin.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18180; root $dir; location / { } } }
EOF
cat > "$dir/proxy.conf" <<EOF
worker_processes 1; daemon off; master_process off; pid $dir/proxy.pid; error_log $dir/proxy.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:18180; keepalive 64; }
  server { listen 127.0.0.1:18181;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF
nginx -c "$dir/origin.conf" & pids+=($!)
go build -o "$dir/pingora" ./cmd/pingora

# run NAME N: the proxy under cachegrind serving N requests; prints instructions, L1 data
# misses and LL data misses (totals).
run() {
  local name=$1 n=$2 port cmd
  if [ "$name" = nginx ]; then
    port=18181; cmd=(nginx -c "$dir/proxy.conf")
  else
    port=18182; cmd=("$dir/pingora" --listen 127.0.0.1:$port --upstream 127.0.0.1:18180)
  fi
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "something already listens on 127.0.0.1:$port" >&2; exit 1
  fi
  GOMAXPROCS=1 valgrind --tool=cachegrind --cache-sim=yes --LL="$LL" --cachegrind-out-file="$dir/cg.out" \
    "${cmd[@]}" > "$dir/vg.log" 2>&1 &
  local v=$!
  for _ in $(seq 1 150); do curl -sf -o /dev/null "http://127.0.0.1:$port/1k" && break; sleep 0.2; done
  h2load --h1 -n "$n" -c "$CONNS" "http://127.0.0.1:$port/1k" > "$dir/h2load.out"
  grep -q "$n succeeded" "$dir/h2load.out" || { cat "$dir/h2load.out" >&2; exit 1; }
  if [ "$name" = nginx ]; then kill -QUIT $v; else kill -INT $v; fi
  wait $v || true
  awk '/ I *refs:/ {gsub(",","",$4); i=$4} / D1  misses:/ {gsub(",","",$4); d=$4} / LLd misses:/ {gsub(",","",$4); l=$4}
       END {print i, d, l}' "$dir/vg.log"
}

printf "%-10s %14s %12s %12s   (per request; LL %s, %s connections)\n" proxy instructions "L1d misses" "LLd misses" "$LL" "$CONNS"
for name in pingora-go nginx; do
  read -r i1 d1 l1 < <(run "$name" 10000)
  read -r i2 d2 l2 < <(run "$name" 30000)
  awk -v n="$name" -v i="$((i2 - i1))" -v d="$((d2 - d1))" -v l="$((l2 - l1))" \
    'BEGIN {printf "%-10s %14.0f %12.1f %12.1f\n", n, i/20000, d/20000, l/20000}'
done
