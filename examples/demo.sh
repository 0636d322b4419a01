#!/usr/bin/env bash
# The demo of what skiff does today: load a bootstrap, serve Envoy's admin API, show it.
# Usage: examples/demo.sh [path/to/skiff]   (./run demo builds and calls it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
skiff=${1:-$here/../build/proxy/skiff}
boot=$here/bootstrap/minimal.json
port=15000
logdir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$logdir"' EXIT

if curl -s -o /dev/null "http://127.0.0.1:$port/ready" 2>/dev/null; then
	echo "port $port is busy (another skiff or envoy?): stop it and run the demo again" >&2
	exit 1
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "skiff validates a bootstrap the way 'envoy --mode validate' does"
run "$skiff" --mode validate -c "$boot"

say "start skiff with Envoy's flags (as pilot-agent would)"
echo "\$ skiff -c $boot --drain-time-s 45 --drain-strategy immediate --local-address-ip-version v4 --disable-hot-restart --allow-unknown-static-fields -l info --concurrency 2"
"$skiff" -c "$boot" --drain-time-s 45 --drain-strategy immediate --local-address-ip-version v4 \
	--disable-hot-restart --allow-unknown-static-fields -l info --concurrency 2 \
	>"$logdir/skiff.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	curl -s -o /dev/null "http://127.0.0.1:$port/ready" && break
	sleep 0.05
done
sed 's/^/   /' "$logdir/skiff.log"

say "readiness, exactly as pilot-agent asks"
run curl -s "http://127.0.0.1:$port/ready"
run curl -s "http://127.0.0.1:$port/stats?usedonly&filter=^(server\\.state|listener_manager\\.workers_started)"

say "/server_info (first lines)"
curl -s "http://127.0.0.1:$port/server_info" | head -n 12

say "a few stats, and the same in Prometheus format"
run curl -s "http://127.0.0.1:$port/stats?filter=^(server\\.(uptime|concurrency|memory_allocated)|cluster_manager\\.active_clusters)"
curl -s "http://127.0.0.1:$port/stats/prometheus" | grep -E '^envoy_(cluster_membership_total|server_state)' || true

say "/clusters"
run curl -s "http://127.0.0.1:$port/clusters" | head -n 4

say "memory: resident set size of this skiff"
grep VmRSS "/proc/$pid/status"

cat <<MSG

skiff is running (pid $pid) with its admin API on 127.0.0.1:$port. Try, in another shell:
  curl -s localhost:$port/help
  curl -s localhost:$port/config_dump | less
  curl -s 'localhost:$port/config_dump?resource=static_clusters&mask=cluster.name'
  curl -s -X POST 'localhost:$port/logging?level=debug'
  $skiff --mode validate -c ../shared/conformance/istio/bootstrap/default_golden.json
Press Enter (or Ctrl-C) to stop it.
MSG
if [ -t 0 ]; then read -r _ || true; fi
run curl -s -X POST "http://127.0.0.1:$port/quitquitquit"
wait "$pid" && echo "skiff exited cleanly"
