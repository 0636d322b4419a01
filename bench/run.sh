#!/usr/bin/env bash
# Side-by-side benchmarks: skiff vs nginx vs HAProxy, in the same run, on this machine:
# idle memory of a sidecar-shaped process, the time to load and validate a configuration,
# the L4 data plane (bench/l4.sh: throughput, CPU, round-trip latency, memory per idle
# connection) and the L7 one (bench/l7.sh: HTTP/1.1 and h2c requests/s, CPU per request,
# latency at a fixed rate). Usage: bench/run.sh BUILD_DIR (./run bench calls it, with
# build/bench/l4load and l7load built; results go to bench/RESULTS.md). L4_* and L7_*
# variables override the L4 and L7 sizes (bench/l4.sh, bench/l7.sh).
set -euo pipefail
build=${1:?build dir}
here=$(cd "$(dirname "$0")" && pwd)
skiff=$build/proxy/skiff
conf=${SKIFF_CONFORMANCE:-$here/../../shared/conformance}
golden=$conf/istio/bootstrap/default_golden.json
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

need() { command -v "$1" >/dev/null || { echo "bench needs $1 (apt-get install -y $2)" >&2; exit 1; }; }
need nginx nginx
need haproxy haproxy
need hyperfine hyperfine

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# Sum of RSS over a process and its children (nginx and haproxy fork workers).
tree_rss_kb() {
	local total=0 p
	for p in $1 $(pgrep -P "$1" || true); do total=$((total + $(rss_kb "$p"))); done
	echo "$total"
}
wait_http() { for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; return 1; }

# --- skiff: Istio's default sidecar bootstrap, one worker, xDS server absent (waits).
port=$(free_port)
"$skiff" -c "$golden" --concurrency 1 -l warning \
	--config-yaml "{\"admin\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$port}}}}" \
	>"$work/skiff.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$port/ready" || true
sleep 1
kill -0 "${pids[-1]}" 2>/dev/null || { echo "skiff exited on $golden:" >&2; cat "$work/skiff.log" >&2; exit 1; }
skiff_rss=$(tree_rss_kb "${pids[-1]}")

# --- nginx: one worker, one server answering on loopback (the smallest comparable setup).
nport=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$nport; location / { return 200 "ok\n"; } }
}
NGX
nginx -c "$work/nginx/nginx.conf" &
pids+=($!)
wait_http "http://127.0.0.1:$nport/"
sleep 1
nginx_rss=$(tree_rss_kb "${pids[-1]}")

# --- HAProxy: one thread, one frontend answering on loopback.
hport=$(free_port)
cat >"$work/haproxy.cfg" <<HAP
global
  nbthread 1
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend f
  bind 127.0.0.1:$hport
  http-request return status 200 content-type text/plain string ok
HAP
haproxy -f "$work/haproxy.cfg" -db &
pids+=($!)
wait_http "http://127.0.0.1:$hport/"
sleep 1
haproxy_rss=$(tree_rss_kb "${pids[-1]}")

echo "bench: $(date +%T) configuration load + validation" >&2
# --- configuration load + validation time
hyperfine -N --warmup 3 --runs 30 --export-json "$work/validate.json" \
	"$skiff --mode validate -c $golden" \
	"nginx -t -q -c $work/nginx/nginx.conf" \
	"haproxy -c -q -f $work/haproxy.cfg" >/dev/null
read -r skiff_ms nginx_ms haproxy_ms < <(python3 -c '
import json,sys
r=json.load(open(sys.argv[1]))["results"]
print(" ".join("%.2f" % (x["mean"]*1000) for x in r))' "$work/validate.json")

# --- L4 data plane, with the processes above stopped (they would only add noise)
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
"$here/l4.sh" "$build" "$work/l4.md"
"$here/l7.sh" "$build" "$work/l7.md"

# which skiff was measured: the commit, and whether sources outside bench/ differed from it
skiff_rev="commit $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$here/.." status --porcelain -- . ':!bench' ':!run' 2>/dev/null)" ]; then
	skiff_rev+=" with uncommitted changes outside bench/"
fi

ratio() { python3 -c "print('%.2f' % ($1/$2))"; }
cat >"$here/RESULTS.md" <<MD
# Benchmarks

Command: \`$( (env | grep -E '^(L4_|L7_|SKIFF_CONFORMANCE=)' || true) | sort | tr '\n' ' ')./run bench\` (bench/run.sh build, which runs
bench/l4.sh build and bench/l7.sh build), $(date -u +%Y-%m-%d), skiff at $skiff_rev,
$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r), release build. Everything runs side by side in the same run on this machine;
ratios are skiff / other.

## Idle memory (resident set, KiB, process and its workers)

| process | RSS (KiB) | skiff / it |
| --- | --- | --- |
| skiff, Istio default sidecar bootstrap, --concurrency 1, waiting for xDS | $skiff_rss | 1.00 |
| nginx, 1 worker, one loopback server | $nginx_rss | $(ratio "$skiff_rss" "$nginx_rss") |
| HAProxy, 1 thread, one loopback frontend | $haproxy_rss | $(ratio "$skiff_rss" "$haproxy_rss") |

Envoy itself is not installed on this machine (no Envoy package in Debian 12), so the
Envoy column of the mission's targets cannot be measured here.

## Load and validate a configuration (ms, mean of 30 runs, hyperfine)

| command | mean (ms) | skiff / it |
| --- | --- | --- |
| skiff --mode validate -c default_golden.json (16 KB Istio bootstrap) | $skiff_ms | 1.00 |
| nginx -t (the config above) | $nginx_ms | $(ratio "$skiff_ms" "$nginx_ms") |
| haproxy -c (the config above) | $haproxy_ms | $(ratio "$skiff_ms" "$haproxy_ms") |

$(cat "$work/l4.md")

$(cat "$work/l7.md")
MD
cat "$here/RESULTS.md"
