#!/usr/bin/env bash
# Per-request overhead of the local host: wrk against a trivial sync function (the devhost test
# fixture's GET /api/health) at 32 connections. Needs wrk (apt-get install -y wrk).
#   bash bench/devhost_http.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
connections="${2:-32}"
port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
data_dir="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data_dir"' EXIT
PAYMENT_GATEWAY_URL=http://127.0.0.1:9 .venv/bin/python -m devhost \
  --app tests/devhost/fixture_app.py --port "$port" --data-dir "$data_dir" >"$data_dir/devhost.log" 2>&1 &
pid=$!
until curl -fs "http://127.0.0.1:$port/api/health" >/dev/null; do sleep 0.1; done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
before="$(cpu_ticks)"
wrk -t2 -c"$connections" -d"${seconds}s" --latency "http://127.0.0.1:$port/api/health" | tee "$data_dir/wrk.txt"
after="$(cpu_ticks)"
# Server CPU per request: steadier than req/s on a shared machine (wrk and the host share 2 cores).
requests="$(awk '/requests in/ {print $1}' "$data_dir/wrk.txt")"
awk -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" -v n="$requests" \
  'BEGIN {printf "host CPU per request: %.1f us\n", t / hz / n * 1e6}'
