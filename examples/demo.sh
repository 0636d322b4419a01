#!/usr/bin/env bash
# The demo of what skiff does today, in two parts:
#  1. static: load an Istio-shaped bootstrap, answer Envoy's admin API, and split live HTTP
#     traffic 90/10 between two versions of a service (a canary);
#  2. the mesh way: skiff takes its clusters, endpoints, listener and route from a control
#     plane over Delta ADS (the test xDS server serves the Istio-shaped files in examples/xds/),
#     and the canary moves 90/10 -> 50/50 -> 0/100 under live keep-alive traffic. Every hop
#     is mutual TLS, as in a mesh: the client sidecar -> a server sidecar (one skiff per
#     version, examples/bootstrap/inbound.json) -> the app, with SPIFFE certificates from a
#     test CA delivered over SDS (the test xDS server plays pilot-agent); the demo prints the
#     identity each side saw.
# Usage: examples/demo.sh [path/to/skiff]   (./run demo builds and calls it; the xDS server is
# expected next to it: <build>/xds/server/skiff-xds-server)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
skiff=${1:-$here/../build/proxy/skiff}
boot=$here/bootstrap/canary.json
xds_server=$(dirname "$skiff")/../xds/server/skiff-xds-server
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
trap 'exit 130' INT TERM # Ctrl-C: the EXIT trap stops everything

if [ ! -x "$xds_server" ]; then
	echo "demo: the test xDS server is missing: $xds_server" >&2
	echo "      build it with 'ninja -C $(cd "$(dirname "$skiff")/.." && pwd)' (or ./run demo)" >&2
	exit 1
fi

for p in $admin $port 18081 18082 18091 18092 15101 15102; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		echo "port $p is busy (another skiff or envoy?): stop it and run the demo again" >&2
		exit 1
	fi
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# Two versions of "reviews": each answers with its name (and notes the caller's certificate
# as its server sidecar forwarded it, x-forwarded-client-cert, once).
for v in 1 2; do
	"$py" - "$((18080 + v))" "v$v" "$work/reviews-v$v.xfcc" <<'PY' >"$work/reviews-v$v.log" 2>&1 &
import http.server, os, sys
port, name, xfcc_file = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes
    def do_GET(self):
        xfcc = self.headers.get("x-forwarded-client-cert")
        if xfcc and not os.path.exists(xfcc_file):
            with open(xfcc_file, "w") as f:
                f.write(xfcc + "\n")
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

# wait_gone PID SECS: wait (bounded) for a process of ours to exit; its status, or 124.
wait_gone() {
	local i
	for i in $(seq 1 $(($2 * 20))); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$1" 2>/dev/null && return 124
	wait "$1"
}

say "stop the static skiff, as pilot-agent does"
run curl -s -X POST "http://127.0.0.1:$admin/quitquitquit"
if wait_gone "$skiff_pid" 10; then echo "skiff exited cleanly"; else
	echo "demo: the static skiff did not exit cleanly (status $?)" >&2
	exit 1
fi

# ============================================================ the mesh way: config over ADS

sock=$work/xds.sock
xlog=$work/xds-server.log
ads_boot=$work/ads.json
routes=$work/routes.json
R=type.googleapis.com/envoy.config.route.v3.RouteConfiguration

# set_weights V1 V2: examples/xds/routes.json (the template) with these weights, into $routes.
set_weights() {
	"$py" - "$here/xds/routes.json" "$routes" "$1" "$2" <<'PY'
import json, os, sys
src, dst, w = sys.argv[1], sys.argv[2], {"v1": int(sys.argv[3]), "v2": int(sys.argv[4])}
resources = json.load(open(src))
for rc in resources:
    for vh in rc["virtual_hosts"]:
        for route in vh["routes"]:
            for c in route["route"]["weighted_clusters"]["clusters"]:
                c["weight"] = w[c["name"].split("|")[2]]  # outbound|8080|v1|reviews...
with open(dst + ".tmp", "w") as f:
    json.dump(resources, f, indent=2)
os.replace(dst + ".tmp", dst)
PY
}

# wait_ack TYPE VERSION SECS: until the xDS server logs skiff's ACK of that version (a NACK or
# a file that does not load ends the demo).
wait_ack() {
	local i
	for i in $(seq 1 $(($3 * 50))); do
		grep -qE "^ACK .*type=$1 version=$2( |$)" "$xlog" && return 0
		if grep -qE "^(NACK .*type=$1 version=$2( |$)|LOAD_FAILED)" "$xlog"; then
			echo "demo: the update was refused:" >&2
			grep -E "^(NACK|LOAD_FAILED)" "$xlog" | sed 's/^/   /' >&2
			return 1
		fi
		sleep 0.02
	done
	echo "demo: no ACK of ${1##*.} $2 within $3 s; server log:" >&2
	tail -n 5 "$xlog" | sed 's/^/   /' >&2
	return 1
}

say "mutual TLS: a test CA issues SPIFFE identities; a pilot-agent stand-in serves them over SDS"
pki=$work/pki
ca=$here/../tests/tls/ca.sh
run bash "$ca" "$pki" ca
run bash "$ca" "$pki" workload productpage default productpage --days 1
run bash "$ca" "$pki" workload reviews default reviews --days 1
openssl x509 -in "$pki/productpage.crt" -noout -ext subjectAltName | sed 's/^/   productpage: /'
openssl x509 -in "$pki/reviews.crt" -noout -ext subjectAltName | sed 's/^/   reviews:     /'
# secrets FILE NAME: what pilot-agent's SDS server sends: `default` (chain + key), `ROOTCA`
secrets() {
	"$py" - "$1" "$pki/$2-chain.crt" "$pki/$2.key" "$pki/root.crt" <<'PY'
import base64, json, sys
out, chain, key, ca = sys.argv[1:]
b64 = lambda p: base64.b64encode(open(p, "rb").read()).decode()
t = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
json.dump([{"@type": t, "name": "default", "tls_certificate": {"certificate_chain": {"inline_bytes": b64(chain)},
                                                               "private_key": {"inline_bytes": b64(key)}}},
           {"@type": t, "name": "ROOTCA", "validation_context": {"trusted_ca": {"inline_bytes": b64(ca)}}}],
          open(out, "w"))
PY
}
for who in productpage reviews; do
	secrets "$work/secrets-$who.json" "$who"
	echo "\$ skiff-xds-server --listen unix:$work/sds-$who.sock $work/secrets-$who.json   ($who's SDS: default + ROOTCA)"
	"$xds_server" --listen "unix:$work/sds-$who.sock" --log "$work/sds-$who.log" "$work/secrets-$who.json" \
		>"$work/sds-$who.err" 2>&1 &
	pids+=($!)
done

say "a server sidecar per reviews version: virtualInbound terminates mTLS (client certificate required)"
for v in 1 2; do
	sed -e "s/__V__/v$v/g" -e "s/15100/$((15100 + v))/" -e "s/18091/$((18090 + v))/" -e "s/18081/$((18080 + v))/" \
		-e "s#/tmp/skiff-sds-reviews.sock#$work/sds-reviews.sock#" "$here/bootstrap/inbound.json" >"$work/inbound-v$v.json"
	echo "\$ skiff -c inbound-v$v.json   (127.0.0.1:$((18090 + v)) -> reviews v$v on 127.0.0.1:$((18080 + v)))"
	"$skiff" -c "$work/inbound-v$v.json" --concurrency 1 -l warning >"$work/inbound-v$v.log" 2>&1 &
	pids+=($!)
done
for v in 1 2; do
	for _ in $(seq 1 100); do
		[ "$(curl -s "http://127.0.0.1:$((15100 + v))/stats?filter=listener.*server_ssl_socket_factory.ssl_context_update_by_sds" |
			awk '{print $2}')" = 1 ] && break
		sleep 0.05
	done
done
for v in 1 2; do
	curl -s "http://127.0.0.1:$((15100 + v))/stats?filter=^(sds\.|listener.*ssl_context_update_by_sds)" | sed "s/^/   v$v sidecar: /"
done

say "the mesh way: a control plane serves Istio-shaped clusters, endpoints, listener and route"
set_weights 90 10
printf '$ ls %s\n' "$here/xds"
ls "$here/xds" | sed 's/^/   /'
echo "   (the route is a template: each phase writes its weights into $routes)"
echo "\$ skiff-xds-server --listen unix:$sock --log $xlog clusters.json endpoints.json listeners.json $routes"
"$xds_server" --listen "unix:$sock" --log "$xlog" "$here/xds/clusters.json" "$here/xds/endpoints.json" \
	"$here/xds/listeners.json" "$routes" >"$work/xds-server.err" 2>&1 &
xds_pid=$!
pids+=($xds_pid)
for _ in $(seq 1 100); do
	grep -q '^READY' "$xlog" 2>/dev/null && break
	kill -0 "$xds_pid" 2>/dev/null || break
	sleep 0.05
done
if ! grep -q '^READY' "$xlog" 2>/dev/null; then
	echo "demo: the xDS server did not start:" >&2
	cat "$work/xds-server.err" "$xlog" 2>/dev/null | sed 's/^/   /' >&2
	exit 1
fi
sed 's/^/   /' "$xlog"

say "skiff with an ADS bootstrap: Delta xDS (api_type DELTA_GRPC, Istio's default since 1.22)"
sed -e "s#/tmp/skiff-xds.sock#$sock#" -e "s#/tmp/skiff-sds.sock#$work/sds-productpage.sock#" \
	"$here/bootstrap/ads.json" >"$ads_boot"
echo "   $here/bootstrap/ads.json, its xds-grpc cluster pointed at $sock, sds-grpc at productpage's SDS:"
"$py" - "$ads_boot" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
d = b["dynamic_resources"]
print("   ads_config:", json.dumps(d["ads_config"]))
print("   cds_config:", json.dumps(d["cds_config"]), " lds_config: the same")
PY
echo "\$ skiff -c $ads_boot --drain-time-s 45 --drain-strategy immediate --local-address-ip-version v4 --disable-hot-restart --allow-unknown-static-fields -l info --concurrency 2"
"$skiff" -c "$ads_boot" --drain-time-s 45 --drain-strategy immediate --local-address-ip-version v4 \
	--disable-hot-restart --allow-unknown-static-fields -l info --concurrency 2 >"$work/skiff-ads.log" 2>&1 &
skiff_pid=$!
pids+=($skiff_pid)
state=
for _ in $(seq 1 200); do
	state=$(curl -s "http://127.0.0.1:$admin/ready" || true)
	[ "$state" = LIVE ] && break
	kill -0 "$skiff_pid" 2>/dev/null || break
	sleep 0.05
done
if [ "$state" != LIVE ] || ! wait_ack "$R" v1 5; then
	echo "demo: skiff did not go LIVE from ADS (/ready: ${state:-no answer}); logs:" >&2
	tail -n 15 "$work/skiff-ads.log" "$xlog" | sed 's/^/   /' >&2
	exit 1
fi
sed 's/^/   /' "$work/skiff-ads.log"
echo "   the xDS server's log: skiff's subscriptions and ACKs, in Envoy's order (CDS, EDS, LDS, RDS)"
grep -E '^(REQUEST|ACK) ' "$xlog" |
	sed -E -e 's/^(REQUEST|ACK) stream=[0-9]+ mode=([a-z]+) type=[^ ]*\.([A-Za-z]+) (nonce=[^ ]* )?(subscribe=[^ ]*|version=[^ ]*).*/   \1 (\2) \3 \5/' \
		-e 's/subscribe=$/subscribe=* (wildcard)/'

say "readiness and the xDS counters"
run curl -s "http://127.0.0.1:$admin/ready"
run curl -s "http://127.0.0.1:$admin/stats?filter=^(cluster_manager.cds|listener_manager.lds)\\.update_success"
echo "\$ curl -s http://127.0.0.1:$admin/config_dump | python3 ...   (the dynamic resources; in Delta each has its own version)"
curl -s "http://127.0.0.1:$admin/config_dump" | "$py" -c '
import json, sys
d = json.load(sys.stdin)
for c in d["configs"]:
    for key, inner in (("dynamic_active_clusters", "cluster"), ("dynamic_listeners", "active_state"),
                       ("dynamic_route_configs", "route_config")):
        for r in c.get(key, []):
            if key == "dynamic_listeners":
                name, version = r["name"], r.get("active_state", {}).get("version_info", "")
            else:
                name, version = r[inner]["name"], r.get("version_info", "")
            print(f"   {key:<24} {name}  (resource version {version})")
'

say "a live canary rollout: 90/10 -> 50/50 -> 0/100, pushed over ADS under keep-alive traffic"
# One client, one keep-alive connection, requests back to back for all the phases; it reads
# the phase name from $phase before each request and counts per phase (v1, v2, failed).
phase=$work/phase
set_phase() { echo "$1" >"$phase.tmp" && mv -f "$phase.tmp" "$phase"; } # never seen half-written
set_phase "90/10"
"$py" - "$port" "$phase" "$work/client.json" 30 <<'PY' >"$work/client.log" 2>&1 &
import http.client, json, os, sys, time
port, phase_file, out, maxs = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
order, counts, errors, conns, conn = [], {}, [], 0, None
deadline = time.time() + maxs
while time.time() < deadline:
    try:
        with open(phase_file) as f:
            phase = f.read().strip()
    except OSError:
        phase = "?"
    if phase == "stop":
        break
    if phase not in counts:
        counts[phase] = {"v1": 0, "v2": 0, "failed": 0}
        order.append(phase)
    c = counts[phase]
    try:
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conns += 1
        conn.request("GET", "/reviews/0", headers={"host": "reviews:8080"})
        r = conn.getresponse()
        body = r.read().decode("utf-8", "replace").strip()
        if r.status == 200 and body in ("v1", "v2"):
            c[body] += 1
        else:
            c["failed"] += 1
            errors.append(f"{phase}: status {r.status} {body[:60]!r}")
        if r.will_close:
            conn.close()
            conn = None
    except Exception as e:
        c["failed"] += 1
        errors.append(f"{phase}: {type(e).__name__}: {e}")
        if conn is not None:
            conn.close()
        conn = None
        time.sleep(0.01)
json.dump({"order": order, "counts": counts, "errors": errors[:5], "conns": conns}, open(out, "w"))
PY
client_pid=$!
pids+=($client_pid)
echo "   phase 90/10: route version v1 (served since skiff started), traffic for 1.5 s"
sleep 1.5
gen=1
for w in "50 50" "0 100"; do
	read -r w1 w2 <<<"$w"
	gen=$((gen + 1))
	set_phase "switch to $w1/$w2" # the requests between the push and the ACK count apart
	set_weights "$w1" "$w2"
	t0=$(date +%s%N)
	kill -HUP "$xds_pid"
	wait_ack "$R" "v$gen" 5 || exit 1
	t1=$(date +%s%N)
	set_phase "$w1/$w2"
	echo "   phase $w1/$w2: routes.json rewritten, SIGHUP: RouteConfiguration v$gen pushed, ACK seen $(((t1 - t0) / 1000000)) ms after the SIGHUP; traffic for 1.5 s"
	grep -E "^ACK .*type=$R version=v$gen( |$)" "$xlog" | sed 's/^/      server log: /'
	sleep 1.5
done
set_phase stop
if ! wait_gone "$client_pid" 10 || [ ! -s "$work/client.json" ]; then
	echo "demo: the client did not finish:" >&2
	sed 's/^/   /' "$work/client.log" >&2
	exit 1
fi
"$py" - "$work/client.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
total = failed = 0
print()
print(f"   {'phase':<22} {'requests':>8} {'v1':>7} {'v2':>7} {'failed':>7}")
for name in d["order"]:
    c = d["counts"][name]
    n = c["v1"] + c["v2"] + c["failed"]
    total, failed = total + n, failed + c["failed"]
    if n == 0:
        continue
    label = name if not name.startswith("switch") else f"  ({name})"
    pct = lambda k: f"{100.0 * c[k] / n:6.1f}%"
    print(f"   {label:<22} {n:8d} {pct('v1')} {pct('v2')} {c['failed']:7d}")
print("   (switch rows: the requests between the SIGHUP and the ACK, old and new weights mixed)")
print()
print(f"   {total} requests, {failed} failed  ({d['conns']} connection{'s' if d['conns'] != 1 else ''} to skiff)")
for e in d["errors"]:
    print("   failure:", e)
sys.exit(1 if failed or total == 0 else 0)
PY

say "who saw whom: every hop was mutual TLS with SPIFFE identities"
echo "   the client sidecar (productpage) verified the server's identity (its access log, last lines):"
grep -F '[productpage sidecar]' "$work/skiff-ads.log" | tail -n 2 | sed 's/^/   /'
for v in 1 2; do
	echo "   the reviews v$v sidecar verified the client's certificate (its access log):"
	grep -F "[reviews-v$v sidecar]" "$work/inbound-v$v.log" | tail -n 1 | sed 's/^/   /'
	echo "   reviews v$v (the app) received, from its sidecar:"
	sed 's/^/   x-forwarded-client-cert: /' "$work/reviews-v$v.xfcc" 2>/dev/null || echo "   (nothing)"
done
run curl -s "http://127.0.0.1:$admin/stats?filter=^cluster\.outbound.*\.ssl\.(handshake|connection_error|fail_verify_san)$"

say "skiff's own count of the route updates (RDS) and the split per cluster"
run curl -s "http://127.0.0.1:$admin/stats?filter=^http\\..*rds\\..*update_(success|rejected)$"
curl -s "http://127.0.0.1:$admin/stats/prometheus" | grep -E '^envoy_cluster_upstream_rq_total\{' || true

cat <<MSG

skiff is running (pid $skiff_pid): admin on 127.0.0.1:$admin, the service on 127.0.0.1:$port,
configured over Delta ADS by skiff-xds-server (pid $xds_pid) on unix:$sock.
Try, in another shell:
  curl -s -H 'host: reviews' localhost:$port/
  \$EDITOR $routes; kill -HUP $xds_pid   # push a new route; then: tail $xlog
  curl -s 'localhost:$admin/config_dump?resource=dynamic_route_configs' | less
  curl -s localhost:$admin/clusters | grep -E 'cx_total|rq_'
  curl -s -X POST 'localhost:$admin/logging?level=debug'
Press Enter (or Ctrl-C) to stop.
MSG
if [ -t 0 ]; then read -r _ || true; fi
run curl -s -X POST "http://127.0.0.1:$admin/quitquitquit"
if wait_gone "$skiff_pid" 10; then echo "skiff exited cleanly"; else
	echo "demo: skiff did not exit cleanly (status $?)" >&2
	exit 1
fi
