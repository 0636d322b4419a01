#!/usr/bin/env bash
# The demo of what skiff does today: load an Istio-shaped bootstrap, answer Envoy's admin API,
# and split live HTTP traffic 90/10 between two versions of a service (a canary).
# Usage: examples/demo.sh [path/to/skiff]   (./run demo builds and calls it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
skiff=${1:-$here/../build/proxy/skiff}
boot=$here/bootstrap/canary.json
admin=15000
port=8080
py=$(command -v /usr/bin/python3 || command -v python3)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

for p in $admin $port 18081 18082; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		echo "port $p is busy (another skiff or envoy?): stop it and run the demo again" >&2
		exit 1
	fi
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# Two versions of "reviews": each answers with its name.
for v in 1 2; do
	"$py" - "$((18080 + v))" "v$v" <<'PY' >"$work/reviews-v$v.log" 2>&1 &
import http.server, sys
port, name = int(sys.argv[1]), sys.argv[2].encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(name) + 1))
        self.end_headers()
        self.wfile.write(name + b"\n")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
	pids+=($!)
done

say "skiff validates the bootstrap the way 'envoy --mode validate' does"
run "$skiff" --mode validate -c "$boot"

say "start skiff with Envoy's flags, as pilot-agent would"
echo "\$ skiff -c $boot --drain-time-s 45 --drain-strategy immediate --local-address-ip-version v4 --disable-hot-restart --allow-unknown-static-fields -l info --concurrency 2"
"$skiff" -c "$boot" --drain-time-s 45 --drain-strategy immediate --local-address-ip-version v4 \
	--disable-hot-restart --allow-unknown-static-fields -l info --concurrency 2 >"$work/skiff.log" 2>&1 &
skiff_pid=$!
pids+=($skiff_pid)
for _ in $(seq 1 100); do
	curl -s -o /dev/null "http://127.0.0.1:$admin/ready" && break
	sleep 0.05
done
sed 's/^/   /' "$work/skiff.log"

say "readiness, exactly as pilot-agent asks"
run curl -s "http://127.0.0.1:$admin/ready"
run curl -s "http://127.0.0.1:$admin/stats?usedonly&filter=^(server\\.state|listener_manager\\.workers_started)"

say "a canary: the route sends 90% to reviews v1 and 10% to v2 (weighted_clusters)"
"$py" - "$port" <<'PY'
import http.client, sys, time
port, n = int(sys.argv[1]), 1000
seen = {}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
start = time.time()
for i in range(1, n + 1):
    conn.request("GET", "/reviews/0", headers={"host": "reviews:8080"})
    body = conn.getresponse().read().decode().strip()
    seen[body] = seen.get(body, 0) + 1
    if i % 20 == 0 or i == n:
        bar = "#" * (i * 40 // n)
        print(f"\r   [{bar:<40}] {i:4d}/{n} requests", end="", flush=True)
print()
took = time.time() - start
for name in sorted(seen):
    share = 100.0 * seen[name] / n
    print(f"   {name}: {seen[name]:4d} responses ({share:4.1f}%)  " + "#" * round(share / 2))
print(f"   {n} requests over one keep-alive connection in {took:.2f} s")
PY

say "the same split, as skiff counted it (Prometheus, Envoy's names and tags)"
curl -s "http://127.0.0.1:$admin/stats/prometheus" | grep -E '^envoy_cluster_upstream_rq_total\{' || true
run curl -s "http://127.0.0.1:$admin/stats?filter=^http\\..*downstream_rq_(total|2xx)$"

say "memory: resident set size of this skiff"
grep VmRSS "/proc/$skiff_pid/status"

cat <<MSG

skiff is running (pid $skiff_pid): admin on 127.0.0.1:$admin, the service on 127.0.0.1:$port.
Try, in another shell:
  curl -s -H 'host: reviews' localhost:$port/
  curl -s localhost:$admin/clusters | grep -E 'cx_total|rq_'
  curl -s 'localhost:$admin/config_dump?resource=static_listeners' | less
  curl -s -X POST 'localhost:$admin/logging?level=debug'
Press Enter (or Ctrl-C) to stop.
MSG
if [ -t 0 ]; then read -r _ || true; fi
run curl -s -X POST "http://127.0.0.1:$admin/quitquitquit"
wait "$skiff_pid" && echo "skiff exited cleanly"
