#!/usr/bin/env bash
# skiff configured from xDS (ADS), end to end, in SotW and in Delta: the test xDS server
# (build/xds/server/skiff-xds-server) on a unix socket serves resource files, skiff takes its
# clusters, endpoints, listeners and routes from it, python upstreams answer with their own
# name ("v1", "v2"). Envoy's behaviour is the contract:
#   1. conformance: Istio's config dumps (plus the clusters, endpoints and listener that make
#      every name resolvable) are ACKed, skiff goes LIVE, /config_dump lists everything;
#      initial fetch in Envoy's order (CDS, EDS, LDS, RDS)
#   2. traffic: weighted_clusters 100/0 -> 0/100 -> 50/50 through RDS, with a keep-alive and a
#      new-connection client running during the switches: no failed request
#   3. an invalid cluster and an invalid route are NACKed by name; the old config serves
#   4. a changed listener takes new connections, the old one drains (no failed request), an
#      unchanged listener is not touched; a removed listener's port refuses connections
#   5. a listener whose route configuration is missing stays warming (port refused) until
#      the route arrives
#   6. an EDS-only update keeps the cluster and its pooled upstream connections
#   7. the control plane killed: connected_state 0, traffic goes on; restarted: reconnect
#      (Delta: initial_resource_versions, nothing resent), unchanged listeners untouched
#   8. garbage on the stream: NACK, skiff serves on
# Before the first CDS/LDS (and their EDS/RDS) skiff reports INITIALIZING (server.state 3,
# /ready 503); after, LIVE.
. "$(dirname "$0")/lib.sh"

require_tools curl jq python3 openssl || {
	summary
	exit 1
}
[ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3

SKIFF_BUILD=${SKIFF_BUILD:-$(cd "$(dirname "$SKIFF_BIN")/.." && pwd)}
SERVER="$SKIFF_BUILD/xds/server/skiff-xds-server"
if [ ! -x "$SERVER" ]; then
	_t_fail "binaries" "$SERVER is not built"
	summary
	exit 1
fi
CONFDUMP="$SKIFF_CONFORMANCE/istio/configdump"

C=type.googleapis.com/envoy.config.cluster.v3.Cluster
E=type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
L=type.googleapis.com/envoy.config.listener.v3.Listener
R=type.googleapis.com/envoy.config.route.v3.RouteConfiguration
HCM_TYPE=type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
ROUTER='{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}'

# The whole script stays well under 2 minutes: each mode (SotW, Delta) has this many seconds
# (it needs 20-30 when skiff behaves); waits are cut to what is left, and cases that would
# start later are reported as not run (a failure each).
MODE_BUDGET=${XDS_DYNAMIC_TEST_MODE_BUDGET:-45}
MODE_DEADLINE=$((SECONDS + MODE_BUDGET))
SERVING=0 # the main listener of the current mode answered (run_traffic)

# ======================================================================= python helpers

# Upstreams: up.py READY PORT:NAME...; each answers every request with NAME as the body
# (HTTP/1.1 keep-alive) and appends a line to $TMP/conns.PORT per accepted connection.
cat >"$TMP/up.py" <<'PY'
import os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # the head and the body in one write (flushed after each request)
    disable_nagle_algorithm = True
    def log_message(self, *a):
        pass
    def setup(self):
        super().setup()
        with open(self.server.conns, "a") as f:
            f.write("c\n")
    def do_GET(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        out = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_POST = do_HEAD = do_GET

ready = sys.argv[1]
for spec in sys.argv[2:]:
    port, name = spec.split(":")
    ThreadingHTTPServer.request_queue_size = 256
    s = ThreadingHTTPServer(("127.0.0.1", int(port)), H)
    s.daemon_threads = True
    s.name = name
    s.conns = os.path.join(os.path.dirname(ready), "conns.%s" % port)
    open(s.conns, "a").close()
    threading.Thread(target=s.serve_forever, daemon=True).start()
open(ready, "w").close()
parent, deadline = os.getppid(), time.time() + 300
while os.getppid() == parent and time.time() < deadline:
    time.sleep(0.2)
PY

# Load client: load.py PORT MODE OUT STOP MAXSECS; MODE "ka" keeps one HTTP/1.1 connection
# (a new one only when the server closed it), "new" opens one per request. Appends one line
# per request to OUT: "ok BODY", "fail WHY", or "retry WHY" (a reused keep-alive connection
# found closed before any response byte: the request is sent again on a new connection, as
# curl and browsers do); "done conns=N" at the end (STOP exists or MAXSECS passed).
cat >"$TMP/load.py" <<'PY'
import http.client, os, sys, time
port, mode, out, stop, maxs = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
f = open(out, "a", buffering=1)
conn, conns, deadline = None, 0, time.time() + maxs
while time.time() < deadline and not os.path.exists(stop):
    fresh = conn is None
    if fresh:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conns += 1
    try:
        conn.request("GET", "/load", headers={"Connection": "close"} if mode == "new" else {})
        r = conn.getresponse()
        body = r.read().decode("utf-8", "replace")
        if r.status == 200:
            f.write("ok %s\n" % body)
        else:
            f.write("fail status=%d %s\n" % (r.status, body[:80].replace("\n", " ")))
        if mode == "new" or r.will_close:
            conn.close()
            conn = None
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
        conn.close()
        conn = None
        f.write(("fail %s: %s\n" if fresh else "retry %s: %s\n") % (type(e).__name__, e))
        continue
    except Exception as e:
        conn.close()
        conn = None
        f.write("fail %s: %s\n" % (type(e).__name__, e))
    time.sleep(0.01)
f.write("done conns=%d\n" % conns)
PY

# count.py PORT N: N requests over one keep-alive connection (reopened if closed); prints
# the bodies counted as JSON, failures as "fail" (all of them within 15 s, the rest "fail").
cat >"$TMP/count.py" <<'PY'
import http.client, json, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
conn, counts, deadline = None, {}, time.time() + 15
for i in range(n):
    if time.time() > deadline:
        counts["fail"] = counts.get("fail", 0) + n - i
        break
    try:
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/count")
        r = conn.getresponse()
        body = r.read().decode("utf-8", "replace")
        k = body if r.status == 200 else "fail"
        if r.will_close:
            conn.close()
            conn = None
    except Exception:
        k = "fail"
        if conn is not None:
            conn.close()
        conn = None
    counts[k] = counts.get(k, 0) + 1
print(json.dumps(counts, sort_keys=True))
PY

# phases.py PORT N GO OUT: one keep-alive connection, N requests, "PHASE1" in OUT, waits for
# the file GO (at most 10 s), N more requests; "ok BODY"/"fail WHY" lines, "done conns=K".
# Each phase stops after 10 s.
cat >"$TMP/phases.py" <<'PY'
import http.client, os, sys, time
port, n, go, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
f = open(out, "a", buffering=1)
conn, conns = None, 0
def run():
    global conn, conns
    deadline = time.time() + 10
    for i in range(n):
        if time.time() > deadline:
            f.write("fail phase timeout\n")
            break
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conns += 1
            conn.request("GET", "/phase")
            r = conn.getresponse()
            body = r.read().decode("utf-8", "replace")
            f.write(("ok %s\n" % body) if r.status == 200 else "fail status=%d\n" % r.status)
            if r.will_close:
                conn.close()
                conn = None
        except Exception as e:
            f.write("fail %s: %s\n" % (type(e).__name__, e))
            if conn is not None:
                conn.close()
            conn = None
run()
f.write("PHASE1\n")
deadline = time.time() + 10
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.02)
run()
f.write("done conns=%d\n" % conns)
PY

# ======================================================================= shell helpers

# forget_pid PID: a process this script killed itself is no longer cleaned up at exit.
forget_pid() {
	local keep=() p
	for p in "${_T_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	_T_PIDS=("${keep[@]}")
}

# poll_until [-n] SECONDS CMD...: runs CMD until it succeeds, 50 ms apart, for at most SECONDS
# of wall-clock time, and always once. The time is cut to what is left of the mode's time
# (MODE_DEADLINE, in $SECONDS) unless -n: once a mode has used its time, every further check
# tries once and fails at once.
poll_until() {
	local secs end now
	if [ "$1" = -n ]; then
		secs=$2
		shift 2
	else
		secs=$1
		shift
		[ $((MODE_DEADLINE - SECONDS)) -lt "$secs" ] && secs=$((MODE_DEADLINE - SECONDS))
	fi
	now=${EPOCHREALTIME//[.,]/}
	end=$((now + secs * 1000000))
	while :; do
		"$@" && return 0
		now=${EPOCHREALTIME//[.,]/}
		[ "$now" -ge "$end" ] && return 1
		sleep 0.05
	done
}

# has_line FILE ERE: a line of FILE (which may not exist yet) matches.
has_line() {
	grep -qE -- "$2" "$1" 2>/dev/null
}

# wait_line FILE ERE [SECONDS]: polls (bounded) until a line of FILE matches.
wait_line() {
	poll_until "${3:-5}" has_line "$1" "$2"
}

# check_line NAME FILE ERE [SECONDS]
check_line() {
	if wait_line "$2" "$3" "${4:-5}"; then
		_t_ok "$1"
		return 0
	fi
	_t_fail "$1" "no line matches /$3/ in $(basename "$2"): $(tail -n 6 "$2" 2>/dev/null)"
	return 1
}

# xstat NAME: one stat's value from skiff's admin ($ADMIN), "missing" when absent. Asks for
# that stat alone (/stats?filter=^NAME$): the whole of /stats is slow under ASan.
xstat() {
	local re="^${1//./\\.}\$"
	curl -s -g --max-time 3 "http://127.0.0.1:$ADMIN/stats?filter=$re" |
		awk -F': ' -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print "missing" }'
}

# stat_cmp NAME OP VALUE: the stat compares numerically (OP: == >= > <=).
stat_cmp() {
	local v
	v=$(xstat "$1")
	awk -v v="$v" -v w="$3" -v op="$2" 'BEGIN {
		if (v == "missing" || v == "" || v + 0 != v) exit 1
		if (op == "==") exit !(v + 0 == w + 0)
		if (op == ">=") exit !(v + 0 >= w + 0)
		if (op == ">") exit !(v + 0 > w + 0)
		if (op == "<=") exit !(v + 0 <= w + 0)
		exit 1 }'
}

# check_stat_wait NAME OP VALUE [SECONDS]: polls (bounded) until stat_cmp holds.
check_stat_wait() {
	if poll_until "${4:-3}" stat_cmp "$1" "$2" "$3"; then
		_t_ok "$M: ${CTX}stat $1 $2 $3"
		return 0
	fi
	_t_fail "$M: ${CTX}stat $1 $2 $3" "value: $(xstat "$1")"
	return 1
}

# dump [QUERY]: skiff's /config_dump (with ?QUERY).
dump() {
	curl -s --max-time 3 "http://127.0.0.1:$ADMIN/config_dump${1:+?$1}"
}

# sec KIND: the *KIND*ConfigDump object of the config dump on stdin as compact JSON (KIND:
# Clusters, Listeners, Routes, Endpoints), "null" when absent.
sec() {
	jq -c --arg k "$1" '[.configs[]? | select((.["@type"] // "") | endswith("." + $k + "ConfigDump"))][0]' \
		2>/dev/null || echo null
}

# section KIND [QUERY]: `sec KIND` of /config_dump?QUERY.
section() {
	dump "${2:-}" | sec "$1"
}

# section_is KIND QUERY JQ: JQ is true of `section KIND QUERY`.
section_is() {
	section "$1" "$2" | jq -e "$3" >/dev/null 2>&1
}

# wait_json NAME KIND QUERY JQ [SECONDS]: polls until JQ is true of `section KIND QUERY`.
wait_json() {
	if poll_until "${5:-3}" section_is "$2" "$3" "$4"; then
		_t_ok "$1"
		return 0
	fi
	_t_fail "$1" "jq '$4' not true of the ${2}ConfigDump: $(section "$2" "$3")"
	return 1
}

# refused PORT: nothing accepts a TCP connection on 127.0.0.1:PORT.
refused() {
	! timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# wait_refused PORT SECONDS
wait_refused() {
	poll_until "$2" refused "$1"
}

# body_is PORT [WANT]: a GET through 127.0.0.1:PORT answers 200 (with the body WANT).
body_is() {
	req "http://127.0.0.1:$1/probe"
	[ "$CODE" = 200 ] && { [ -z "${2:-}" ] || [ "$BODY" = "$2" ]; }
}

# wait_body PORT WANT [SECONDS]: polls until a GET through PORT answers 200 WANT.
wait_body() {
	poll_until "${3:-3}" body_is "$1" "$2"
}

# wait_body_any PORT SECONDS: polls until a GET through PORT answers 200.
wait_body_any() {
	poll_until "$2" body_is "$1"
}

# count PORT N: prints count.py's JSON.
count() {
	"$PYTHON3" "$TMP/count.py" "$1" "$2"
}

# bg_load NAME PORT MODE: starts load.py (output $TMP/NAME.out, stop file $TMP/NAME.stop);
# sets LOAD_PID.
bg_load() {
	rm -f "$TMP/$1.out" "$TMP/$1.stop"
	"$PYTHON3" "$TMP/load.py" "$2" "$3" "$TMP/$1.out" "$TMP/$1.stop" 30 &
	LOAD_PID=$!
	_T_PIDS+=("$LOAD_PID")
}

# exited PID: the process is gone (or a zombie).
exited() {
	! _t_running "$1"
}

# reap PID SECONDS: waits (bounded) for a helper this script started to exit, else kills it.
reap() {
	poll_until -n "$2" exited "$1"
	_t_running "$1" && kill -TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	forget_pid "$1"
}

# stop_load NAME PID: stops the client (bounded: its requests time out after 5 s).
stop_load() {
	touch "$TMP/$1.stop"
	reap "$2" 7
}

# check_load NAME WHAT: the client's output shows requests, and none failed.
check_load() {
	local out="$TMP/$1.out" ok fails
	ok=$(grep -c '^ok ' "$out" 2>/dev/null)
	fails=$(grep '^fail ' "$out" 2>/dev/null | sort | uniq -c | sort -rn | head -n 3)
	if [ "${ok:-0}" -ge 10 ] && [ -z "$fails" ]; then
		_t_ok "$2 ($ok requests, none failed)"
		return 0
	fi
	_t_fail "$2" "${ok:-0} ok; failures: ${fails:-none}; last lines: $(tail -n 3 "$out" 2>/dev/null | tr '\n' '|')"
	return 1
}

# ---------------------------------------------------------------- skiff and the server

bootstrap() { # API_TYPE NODE_ID SOCKET ADMIN_PORT [SDS]: with SDS, pilot-agent's sds-grpc on SOCKET too
	local sds=""
	[ -n "${5:-}" ] && sds=",
  {\"name\": \"sds-grpc\", \"type\": \"STATIC\", \"connect_timeout\": \"1s\",
   \"load_assignment\": {\"cluster_name\": \"sds-grpc\", \"endpoints\": [{\"lb_endpoints\": [
     {\"endpoint\": {\"address\": {\"pipe\": {\"path\": \"$3\"}}}}]}]},
   \"typed_extension_protocol_options\": {\"envoy.extensions.upstreams.http.v3.HttpProtocolOptions\": {
     \"@type\": \"type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\",
     \"explicit_http_config\": {\"http2_protocol_options\": {}}}}}"
	cat <<EOF
{"node": {"id": "$2", "cluster": "test"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $4}}},
 "dynamic_resources": {
   "ads_config": {"api_type": "$1", "set_node_on_first_message_only": true, "transport_api_version": "V3",
     "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
   "cds_config": {"ads": {}, "resource_api_version": "V3"},
   "lds_config": {"ads": {}, "resource_api_version": "V3"}},
 "static_resources": {"clusters": [{"name": "xds-grpc", "type": "STATIC", "connect_timeout": "1s",
   "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"pipe": {"path": "$3"}}}}]}]},
   "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
     "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
     "explicit_http_config": {"http2_protocol_options": {}}}}}$sds]}}
EOF
}

# istio_secrets FILE: pilot-agent's `default` and `ROOTCA` (tests/tls/ca.sh), which Istio's
# clusters and listeners name over sds-grpc (they warm until these arrive, as in Envoy).
istio_secrets() {
	local certs="$TMP/certs" t=type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
	if [ ! -f "$certs/w1.key" ]; then
		{ bash "$SKIFF_SRC/tests/tls/ca.sh" "$certs" ca &&
			bash "$SKIFF_SRC/tests/tls/ca.sh" "$certs" workload w1 default workload --days 30; } \
			>"$TMP/ca.log" 2>&1 || return 1
	fi
	jq -n --rawfile ca "$certs/root.crt" --rawfile chain "$certs/w1-chain.crt" --rawfile key "$certs/w1.key" \
		--arg t "$t" '[{"@type": $t, "name": "ROOTCA", "validation_context": {
			"trusted_ca": {"inline_bytes": ($ca | @base64)}}},
		  {"@type": $t, "name": "default", "tls_certificate": {
			"certificate_chain": {"inline_bytes": ($chain | @base64)},
			"private_key": {"inline_bytes": ($key | @base64)}}}]' >"$1"
}

# start_server LOG FILE...: the xDS server on $SOCK; sets SERVER_PID, GEN=1 (its version).
start_server() {
	local log=$1
	shift
	"$SERVER" --listen "unix:$SOCK" --log "$log" "$@" >>"$TMP/server.err" 2>&1 &
	SERVER_PID=$!
	_T_PIDS+=("$SERVER_PID")
	SLOG=$log
	GEN=1
}

# stop_server: SIGTERM, bounded wait; the server must exit 0.
stop_server() {
	kill -TERM "$SERVER_PID" 2>/dev/null
	if wait_exit "$SERVER_PID" 5; then
		check_eq "$M: xDS server exits cleanly" "$EXIT_CODE" 0
	else
		kill -KILL "$SERVER_PID" 2>/dev/null
		_t_fail "$M: xDS server exits" "still running after SIGTERM"
	fi
	forget_pid "$SERVER_PID"
}

# stop_skiff_checked: SIGTERM; skiff must exit with status 0 (ASan's leak check under ./run test).
stop_skiff_checked() {
	kill -TERM "$SKIFF_PID" 2>/dev/null
	if wait_exit "$SKIFF_PID" 6; then
		check_eq "$M: skiff exits cleanly on SIGTERM" "$EXIT_CODE" 0
	else
		kill -KILL "$SKIFF_PID" 2>/dev/null
		_t_fail "$M: skiff exits on SIGTERM" "still running after 6 s; log: $(tail -n 5 "$SKIFF_LOG")"
	fi
	forget_pid "$SKIFF_PID"
}

# ack TYPE: the server logs an ACK of TYPE at its current version (bounded).
ack_re() { echo "^ACK stream=[0-9]+ mode=$M type=$1 version=v$GEN nonce="; }
check_ack() { # NAME TYPE [SECONDS]
	check_line "$M: $1" "$SLOG" "$(ack_re "$2")" "${3:-5}"
}

# skiff_log_tail: the end of skiff's log, for failure details.
skiff_log_tail() { tail -n 8 "$SKIFF_LOG" 2>/dev/null | tr '\n' '|'; }

# case_start N TITLE [need-serving]: announces a case; returns 1 (one failure recorded) when
# the time budget is spent or, with need-serving, when the main listener does not serve.
case_start() {
	CASE="$M: case $1 ($2)"
	CTX="$1: "
	echo "# $CASE at ${SECONDS} s"
	if [ "$SECONDS" -ge "$MODE_DEADLINE" ]; then
		_t_fail "$CASE" "not run: the mode's time budget (${MODE_BUDGET} s) is spent"
		return 1
	fi
	[ -z "${3:-}" ] && return 0
	if [ "$SERVING" = 1 ] && wait_body_any "$LP" 3; then
		return 0
	fi
	SERVING=0 # the next cases fail at once
	_t_fail "$CASE" "not run: nothing answers 200 through the main listener (127.0.0.1:$LP); skiff log: $(skiff_log_tail)"
	return 1
}

# ======================================================================= case 1: conformance

# conformance_resources HTTP_CONFIG ENDPOINT_DUMP LISTENER_PORT: the resources that make
# every name in Istio's dumps resolvable: an EDS cluster for each ClusterLoadAssignment that
# has no cluster, an empty ClusterLoadAssignment for each EDS cluster without one, and a
# listener with an RDS HCM for each route configuration.
conformance_resources() {
	jq -n --slurpfile h "$1" --slurpfile e "$2" --argjson port "$3" --arg C "$C" --arg E "$E" \
		--arg L "$L" --arg R "$R" --arg HCM "$HCM_TYPE" --argjson router "$ROUTER" "$JQ_SERVED"'
	($h[0] | served($C)) as $clusters
	| ($clusters | map(.name)) as $cnames
	| ($clusters | map(select(.type == "EDS") | (.eds_cluster_config.service_name // .name))) as $eds
	| ([$h[0], $e[0]] | served($E) | map(.cluster_name)) as $clas
	| ($h[0] | served($R) | map(.name)) as $routes
	| [($clas - $cnames)[] | {"@type": $C, name: ., type: "EDS", connect_timeout: "1s",
	     eds_cluster_config: {eds_config: {ads: {}, resource_api_version: "V3"}, service_name: .}}]
	+ [($eds - $clas)[] | {"@type": $E, cluster_name: ., endpoints: []}]
	+ [$routes | to_entries[] | {"@type": $L, name: ("conformance_" + (.key | tostring)),
	     address: {socket_address: {address: "127.0.0.1", port_value: ($port + .key)}},
	     filter_chains: [{filters: [{name: "envoy.filters.network.http_connection_manager", typed_config: {
	       "@type": $HCM, stat_prefix: ("conformance_" + (.key | tostring)),
	       rds: {config_source: {ads: {}, resource_api_version: "V3"}, route_config_name: .value},
	       http_filters: [$router]}}]}]}]'
}

# JQ_SERVED: served($t) is what skiff-xds-server serves of type $t from a file: every object
# with that "@type", except under static_* and bootstrap keys (xds/server/store.c).
# shellcheck disable=SC2016 # jq variables, not the shell's
JQ_SERVED='def served($t): [paths(objects | .["@type"] == $t) as $p
	| select($p | map(tostring) | any(startswith("static_") or . == "bootstrap") | not)
	| getpath($p)];'

# names TYPE FILE...: the names of the served resources of TYPE in the files.
names() {
	local t=$1
	shift
	jq -r --arg t "$t" "$JQ_SERVED"' served($t)[] | (.name // .cluster_name)' "$@" | sort -u
}

run_conformance() { # MODE API_TYPE
	local boot gen exp_c exp_e exp_l exp_r got order missing lp doc
	M=$1
	case_start 1 "conformance: Istio's config dumps" || return
	if [ ! -f "$CONFDUMP/http_config.json" ] || [ ! -f "$CONFDUMP/endpoint_configdump.json" ]; then
		skip "$M: conformance" "no corpus at $CONFDUMP"
		return
	fi
	ports ADMIN lp || {
		_t_fail "$M: 1: ports" "no free ports"
		return
	}
	SOCK="$TMP/$M-conf.sock"
	gen="$TMP/$M-conf-gen.json"
	conformance_resources "$CONFDUMP/http_config.json" "$CONFDUMP/endpoint_configdump.json" "$lp" >"$gen"
	check "$M: 1: generated resources are valid JSON" jq -e 'length > 0' "$gen" || return
	exp_c=$(names "$C" "$CONFDUMP/http_config.json" "$gen")
	exp_e=$(names "$E" "$CONFDUMP/endpoint_configdump.json" "$gen")
	exp_l=$(names "$L" "$gen")
	exp_r=$(names "$R" "$CONFDUMP/http_config.json")

	check "$M: 1: pilot-agent's secrets (tests/tls/ca.sh)" istio_secrets "$TMP/$M-conf-secrets.json" || return
	start_server "$TMP/$M-conf-server.log" "$CONFDUMP/http_config.json" "$CONFDUMP/endpoint_configdump.json" "$gen" \
		"$TMP/$M-conf-secrets.json"
	check_line "$M: 1: server loaded the dumps" "$SLOG" '^READY listen=unix:' || return
	check_eq "$M: 1: server did not fail to load" "$(grep -c '^LOAD_FAILED' "$SLOG")" 0

	boot="$TMP/$M-conf-boot.json"
	bootstrap "$2" "conformance-$M" "$SOCK" "$ADMIN" sds >"$boot"
	start_skiff -c "$boot" --concurrency 2 --drain-time-s 2
	if ! wait_admin "$ADMIN"; then
		_t_fail "$M: 1: skiff starts" "admin never answered; log: $(skiff_log_tail)"
		stop_server
		return
	fi

	if ! check_ack "1: CDS ACKed" "$C" 10; then
		_t_fail "$M: case 1" "not run further: skiff never ACKed CDS; skiff log: $(skiff_log_tail)"
		stop_skiff_checked
		stop_server
		return
	fi
	check_ack "1: EDS ACKed" "$E"
	check_ack "1: LDS ACKed" "$L"
	check_ack "1: RDS ACKed" "$R"
	order=$(grep -E '^REQUEST stream=1 ' "$SLOG" | sed -E 's/.* type=([^ ]+).*/\1/' | awk '!seen[$0]++' | head -n 4 | tr '\n' ' ')
	check_eq "$M: 1: initial fetch in Envoy's order (CDS, EDS, LDS, RDS)" "$order" "$C $E $L $R "
	check_stat_wait server.state == 0 10
	req "http://127.0.0.1:$ADMIN/ready"
	check_eq "$M: 1: /ready answers 200 LIVE" "$CODE $BODY" "200 LIVE"$'\n'
	check_stat_wait cluster_manager.cds.update_rejected == 0
	check_stat_wait cluster_manager.cds.update_success ">=" 1
	check_stat_wait listener_manager.lds.update_success ">=" 1
	# pilot-agent's readiness probe (ISTIO_CONTRACT.md), as it asks
	req "http://127.0.0.1:$ADMIN/stats?usedonly&filter=^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)\$"
	check_match "$M: 1: pilot-agent probe: cds.update_success > 0" "$BODY" '^cluster_manager\.cds\.update_success: [1-9][0-9]*$'
	check_match "$M: 1: pilot-agent probe: lds.update_success > 0" "$BODY" '^listener_manager\.lds\.update_success: [1-9][0-9]*$'
	check_eq "$M: 1: pilot-agent probe: nothing rejected" "$(grep -E 'update_rejected: [1-9]' <<<"$BODY")" ""
	req "http://127.0.0.1:$ADMIN/stats?usedonly&filter=^(server\.state|listener_manager\.workers_started)"
	check_match "$M: 1: pilot-agent probe: server.state 0" "$BODY" '^server\.state: 0$'
	check_match "$M: 1: pilot-agent probe: workers_started 1" "$BODY" '^listener_manager\.workers_started: 1$'

	doc=$(dump)
	got=$(sec Clusters <<<"$doc" | jq -r '.dynamic_active_clusters[]?.cluster.name' 2>/dev/null | sort -u)
	missing=$(comm -23 <(printf '%s\n' "$exp_c") <(printf '%s\n' "$got"))
	check_eq "$M: 1: config_dump lists every cluster ($(wc -l <<<"$exp_c")) as active" "$missing" ""
	got=$(sec Routes <<<"$doc" | jq -r '.dynamic_route_configs[]?.route_config.name' 2>/dev/null | sort -u)
	check_eq "$M: 1: config_dump lists the route configuration" "$(comm -23 <(printf '%s\n' "$exp_r") <(printf '%s\n' "$got"))" ""
	got=$(sec Listeners <<<"$doc" | jq -r '.dynamic_listeners[]? | select(.active_state) | .name' 2>/dev/null | sort -u)
	check_eq "$M: 1: config_dump lists the listener as active" "$(comm -23 <(printf '%s\n' "$exp_l") <(printf '%s\n' "$got"))" ""
	got=$(section Endpoints include_eds | jq -r '.dynamic_endpoint_configs[]?.endpoint_config.cluster_name' 2>/dev/null | sort -u)
	missing=$(comm -23 <(printf '%s\n' "$exp_e") <(printf '%s\n' "$got"))
	check_eq "$M: 1: config_dump?include_eds lists every endpoint config ($(wc -l <<<"$exp_e"))" "$missing" ""
	check_json "$M: 1: dynamic clusters carry version_info and last_updated" "$(sec Clusters <<<"$doc")" \
		'[.dynamic_active_clusters[]?] | length > 0 and all(.version_info != null and .last_updated != null)'
	check "$M: 1: the listener accepts connections" timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$lp"
	check_eq "$M: 1: no NACK" "$(grep '^NACK' "$SLOG" | head -n 3)" ""

	stop_skiff_checked
	stop_server
}

# ======================================================================= cases 2-8: traffic

# The traffic resources, from these knobs (see reset_knobs).
#   W1, W2: route r's weights for svc-v1, svc-v2; PREFIX: listener main's stat_prefix; MAIN,
#   ROUTE_R: listener main, route configuration r; WARM, MISSING: listener warm, its route
#   configuration "missing"; WCLUSTER, WCLA: EDS cluster svc-w, its endpoints; BAD: cluster
#   'bad' and an invalid regex in r; V1EXTRA: svc-v1 gets a second (UNHEALTHY) endpoint.
# svc-v2's EDS service_name is svc-v2-eds (EDS is by service_name, not by cluster name).
reset_knobs() {
	W1=100 W2=0 PREFIX=main MAIN=1 ROUTE_R=1 WARM=0 MISSING=0 WCLUSTER=0 WCLA=0 BAD=0 V1EXTRA=0
}

ep() { # PORT [HEALTH] [WEIGHT]
	printf '{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": %s}}}%s%s}' \
		"$1" "${2:+, \"health_status\": \"$2\"}" "${3:+, \"load_balancing_weight\": $3}"
}
eds_cluster() { # NAME [SERVICE_NAME]
	printf '{"@type": "%s", "name": "%s", "type": "EDS", "connect_timeout": "1s",
  "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}, "service_name": "%s"}}' \
		"$C" "$1" "${2:-$1}"
}
cla() { # NAME ENDPOINT-JSON...
	local name=$1 eps
	shift
	eps=$(
		IFS=,
		echo "$*"
	)
	printf '{"@type": "%s", "cluster_name": "%s", "endpoints": [{"lb_endpoints": [%s]}]}' "$E" "$name" "$eps"
}
listener() { # NAME PORT STAT_PREFIX ROUTE_NAME
	printf '{"@type": "%s", "name": "%s",
  "address": {"socket_address": {"address": "127.0.0.1", "port_value": %s}},
  "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
    "@type": "%s", "stat_prefix": "%s",
    "rds": {"config_source": {"ads": {}, "resource_api_version": "V3"}, "route_config_name": "%s"},
    "http_filters": [%s]}}]}]}' "$L" "$1" "$2" "$HCM_TYPE" "$3" "$4" "$ROUTER"
}
route_r() { # W1 W2 BAD
	local bad=""
	[ "$3" = 1 ] && bad='{"match": {"safe_regex": {"regex": "("}}, "route": {"cluster": "svc-v1"}},'
	printf '{"@type": "%s", "name": "r", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [%s
  {"match": {"prefix": "/"}, "route": {"weighted_clusters": {"clusters": [
    {"name": "svc-v1", "weight": %s}, {"name": "svc-v2", "weight": %s}]}}}]}]}' "$R" "$bad" "$1" "$2"
}

traffic_resources() {
	local res=()
	res+=("$(eds_cluster svc-v1)" "$(eds_cluster svc-v2 svc-v2-eds)")
	if [ "$V1EXTRA" = 1 ]; then
		res+=("$(cla svc-v1 "$(ep "$UP1" "" 3)" "$(ep "$DEAD" UNHEALTHY)")")
	else
		res+=("$(cla svc-v1 "$(ep "$UP1")")")
	fi
	res+=("$(cla svc-v2-eds "$(ep "$UP2")")")
	[ "$WCLUSTER" = 1 ] && res+=("$(eds_cluster svc-w)")
	[ "$WCLA" = 1 ] && res+=("$(cla svc-w "$(ep "$UP1")")")
	[ "$MAIN" = 1 ] && res+=("$(listener main "$LP" "$PREFIX" r)")
	[ "$ROUTE_R" = 1 ] && res+=("$(route_r "$W1" "$W2" "$BAD")")
	[ "$WARM" = 1 ] && res+=("$(listener warm "$WP" warm missing)")
	[ "$MISSING" = 1 ] && res+=("{\"@type\": \"$R\", \"name\": \"missing\", \"virtual_hosts\": [{\"name\": \"all\",
  \"domains\": [\"*\"], \"routes\": [{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"svc-v1\"}}]}]}")
	if [ "$BAD" = 1 ]; then
		res+=("{\"@type\": \"$C\", \"name\": \"bad\", \"type\": \"STATIC\", \"connect_timeout\": \"1s\",
  \"lb_policy\": \"LEAST_REQUEST\", \"least_request_lb_config\": {\"choice_count\": 1},
  \"load_assignment\": {\"cluster_name\": \"bad\", \"endpoints\": [{\"lb_endpoints\": [$(ep "$UP1")]}]}}")
	fi
	local IFS=,
	echo "[${res[*]}]"
}

# write_resources: the knobs -> $CURRENT (valid JSON or a failure).
write_resources() {
	traffic_resources >"$CURRENT.next"
	if ! jq -e 'length > 0' "$CURRENT.next" >/dev/null 2>&1; then
		_t_fail "$M: resource file" "invalid JSON: $(head -c 300 "$CURRENT.next")"
		return 1
	fi
	mv "$CURRENT.next" "$CURRENT"
}

# push: the knobs -> $CURRENT, SIGHUP: the server serves it as its next version (GEN+1),
# pushing what changed to skiff.
push() {
	write_resources || return 1
	GEN=$((GEN + 1))
	kill -HUP "$SERVER_PID"
	# the server logs "STORE version=vN resources=K" once it serves the new files
	if ! poll_until -n 3 has_line "$SLOG" "^(STORE|LOAD_FAILED) version=v$GEN " || grep -qE "^LOAD_FAILED version=v$GEN " "$SLOG"; then
		_t_fail "$M: the xDS server serves v$GEN" "$(grep -E "^LOAD_FAILED version=v$GEN " "$SLOG" | head -c 400)"
		return 1
	fi
	return 0
}

case2() {
	local out ka nw mark after n
	case_start 2 "RDS weighted_clusters 100/0 -> 0/100 -> 50/50 with clients running" serving || return
	out=$(count "$LP" 20)
	check_json "$M: 2: 100/0: all v1" "$out" '. == {"v1": 20}'

	bg_load "$M-c2-ka" "$LP" ka
	ka=$LOAD_PID
	bg_load "$M-c2-new" "$LP" new
	nw=$LOAD_PID
	sleep 0.3
	W1=0 W2=100
	push
	check_ack "2: RDS 0/100 ACKed" "$R"
	check "$M: 2: 0/100 applied (a new connection gets v2)" wait_body "$LP" v2 3
	sleep 0.2 # the other worker too
	out=$(count "$LP" 50)
	check_json "$M: 2: 0/100: all of 50 requests v2" "$out" '. == {"v2": 50}'
	# Envoy applies a new route configuration to the next request of an open connection too.
	mark=$(wc -l <"$TMP/$M-c2-ka.out")
	sleep 0.6
	after=$(tail -n +"$((mark + 1))" "$TMP/$M-c2-ka.out" | grep -E '^(ok|fail) ')
	n=$(grep -c . <<<"$after")
	if [ "$n" -ge 5 ] && ! grep -qv '^ok v2$' <<<"$after"; then
		_t_ok "$M: 2: the open keep-alive connection follows the new route ($n requests, all v2)"
	else
		_t_fail "$M: 2: the open keep-alive connection follows the new route" \
			"$n requests after the switch: $(sort <<<"$after" | uniq -c | tr '\n' ' ')"
	fi

	W1=50 W2=50
	push
	check_ack "2: RDS 50/50 ACKed" "$R"
	sleep 0.2
	out=$(count "$LP" 100)
	check_json "$M: 2: 50/50: 100 requests reach both, none fails" "$out" \
		'(.v1 // 0) > 0 and (.v2 // 0) > 0 and (.fail // 0) == 0 and (.v1 + .v2) == 100'
	stop_load "$M-c2-ka" "$ka"
	stop_load "$M-c2-new" "$nw"
	check_load "$M-c2-ka" "$M: 2: keep-alive client during the switches"
	check_load "$M-c2-new" "$M: 2: new-connection client during the switches"
	check_contains "$M: 2: keep-alive client kept its one connection" "$(tail -n 1 "$TMP/$M-c2-ka.out")" "done conns=1"
	check_eq "$M: 2: no NACK" "$(grep '^NACK' "$SLOG" | head -n 3)" ""
}

case3() {
	local out
	case_start 3 "an invalid cluster and route are NACKed, the old config serves" serving || return
	# the invalid route configuration also says 0/100: none of it may be applied
	BAD=1 W1=0 W2=100
	push
	check_line "$M: 3: NACK of the cluster names it" "$SLOG" \
		"^NACK stream=[0-9]+ mode=$M type=$C .*error_detail=.*cluster 'bad'"
	check_line "$M: 3: NACK of the route configuration names it" "$SLOG" \
		"^NACK stream=[0-9]+ mode=$M type=$R .*error_detail=.*'r'"
	check_stat_wait cluster_manager.cds.update_rejected ">=" 1
	check_stat_wait http.main.rds.r.update_rejected ">=" 1
	check_json "$M: 3: the rejected cluster is not in config_dump" "$(section Clusters)" \
		'[(.dynamic_active_clusters // [])[], (.dynamic_warming_clusters // [])[] | .cluster.name]
		 | (index("bad") | not) and (index("svc-v1") != null)'
	out=$(count "$LP" 60)
	check_json "$M: 3: the old route configuration serves (still 50/50, no failure)" "$out" \
		'(.fail // 0) == 0 and (.v1 // 0) > 0 and (.v2 // 0) > 0'
	BAD=0 W1=50 W2=50
	push
	check_ack "3: the next good CDS ACKed" "$C"
	check_ack "3: the next good RDS ACKed" "$R"
}

case5() {
	local i all_refused=1
	case_start 5 "a listener waits for its route configuration, a cluster for its endpoints" serving || return
	WARM=1 WCLUSTER=1
	push
	check_ack "5: CDS with the cluster 'svc-w' ACKed" "$C"
	check_ack "5: LDS with the listener 'warm' ACKed" "$L"
	check_stat_wait cluster_manager.warming_clusters == 1
	wait_json "$M: 5: config_dump shows 'svc-w' under dynamic_warming_clusters" Clusters "" \
		'([.dynamic_warming_clusters[]?.cluster.name] | index("svc-w") != null)
		 and ([.dynamic_active_clusters[]?.cluster.name] | index("svc-w") | not)'
	check_stat_wait listener_manager.total_listeners_warming == 1
	check_stat_wait listener_manager.listener_added ">=" 2
	for i in 1 2 3 4 5; do
		refused "$WP" || all_refused=0
		sleep 0.1
	done
	check_eq "$M: 5: the warming listener's port refuses connections" "$all_refused" 1
	wait_json "$M: 5: config_dump shows 'warm' under warming_state" Listeners "" \
		'[.dynamic_listeners[]? | select(.name == "warm")]
		 | length == 1 and (.[0].warming_state.listener.name == "warm") and (.[0].active_state == null)'
	check "$M: 5: the main listener serves meanwhile" wait_body_any "$LP" 2
	MISSING=1 WCLA=1
	push
	check_ack "5: the route configuration 'missing' ACKed" "$R"
	check_ack "5: the endpoints of 'svc-w' ACKed" "$E"
	check_stat_wait cluster_manager.warming_clusters == 0
	wait_json "$M: 5: config_dump shows 'svc-w' active" Clusters "" \
		'[.dynamic_active_clusters[]?.cluster.name] | index("svc-w") != null'
	check "$M: 5: the listener serves once its route arrived" wait_body "$WP" v1 3
	check_stat_wait listener_manager.total_listeners_warming == 0
	wait_json "$M: 5: config_dump shows 'warm' active" Listeners "" \
		'[.dynamic_listeners[]? | select(.name == "warm")]
		 | length == 1 and .[0].active_state.listener.name == "warm"'
}

# The last_updated of cluster NAME in config_dump.
cluster_updated() {
	section Clusters | jq -r --arg n "$1" \
		'.dynamic_active_clusters[]? | select(.cluster.name == $n) | "\(.version_info) \(.last_updated)"' 2>/dev/null
}

case6() {
	local out="$TMP/$M-c6.out" go="$TMP/$M-c6.go" pid c0 c1 x0 x1 u0 u1
	case_start 6 "an EDS-only update keeps the cluster and its pooled connections" serving || return
	W1=100 W2=0
	push
	check_ack "6: RDS 100/0 ACKed" "$R"
	check "$M: 6: 100/0 applied" wait_body "$LP" v1 3
	rm -f "$out" "$go"
	"$PYTHON3" "$TMP/phases.py" "$LP" 20 "$go" "$out" &
	pid=$!
	_T_PIDS+=("$pid")
	if ! wait_line "$out" '^PHASE1$' 8; then
		_t_fail "$M: 6: first 20 requests" "not done: $(tail -n 3 "$out" 2>/dev/null)"
	fi
	c0=$(grep -c . "$TMP/conns.$UP1")
	x0=$(xstat cluster.svc-v1.upstream_cx_total)
	u0=$(cluster_updated svc-v1)
	V1EXTRA=1
	push
	check_ack "6: EDS with a second (UNHEALTHY) endpoint and a new weight ACKed" "$E"
	wait_json "$M: 6: config_dump?include_eds shows the new endpoints" Endpoints include_eds \
		'[.dynamic_endpoint_configs[]? | select(.endpoint_config.cluster_name == "svc-v1")
		  | .endpoint_config.endpoints[].lb_endpoints[]] | length == 2'
	touch "$go"
	reap "$pid" 8
	c1=$(grep -c . "$TMP/conns.$UP1")
	x1=$(xstat cluster.svc-v1.upstream_cx_total)
	u1=$(cluster_updated svc-v1)
	check_eq "$M: 6: all 40 requests answered by v1 (the UNHEALTHY endpoint unused)" \
		"$(grep -E '^(ok|fail)' "$out" | sort | uniq -c | sed -E 's/^ +//')" "40 ok v1"
	check_eq "$M: 6: the upstream accepted no new connection across the EDS update" "$c1" "$c0"
	if [ "$x0" = missing ] || [ "$x0" = 0 ]; then
		_t_fail "$M: 6: cluster.svc-v1.upstream_cx_total unchanged across the EDS update" "the stat is $x0"
	else
		check_eq "$M: 6: cluster.svc-v1.upstream_cx_total unchanged across the EDS update" "$x1" "$x0"
	fi
	if [ -n "$u0" ] && [ "$u0" = "$u1" ]; then
		_t_ok "$M: 6: the cluster itself is not updated (version_info, last_updated kept)"
	else
		_t_fail "$M: 6: the cluster itself is not updated" "before: '$u0', after: '$u1'"
	fi
}

case8() {
	case_start 8 "garbage on the stream" serving || return
	kill -USR1 "$SERVER_PID"
	check_line "$M: 8: garbage NACKed" "$SLOG" "^NACK stream=[0-9]+ mode=$M type=[^ ]+ .*nonce=garbage-[0-9]+ code=[0-9]+ error_detail=."
	check "$M: 8: skiff still running" _t_running "$SKIFF_PID"
	check_json "$M: 8: and still serving" "$(count "$LP" 10)" '(.fail // 0) == 0 and (.v1 // 0) + (.v2 // 0) == 10'
	check_stat_wait control_plane.connected_state == 1
}

case7() {
	local lm0 oldpid slog2="$TMP/$M-server2.log"
	case_start 7 "the control plane is killed and restarted" serving || return
	lm0=$(xstat listener_manager.listener_modified)
	oldpid=$SERVER_PID
	kill -KILL "$oldpid"
	wait "$oldpid" 2>/dev/null
	forget_pid "$oldpid"
	check_stat_wait control_plane.connected_state == 0 5
	check_json "$M: 7: traffic goes on without the control plane" "$(count "$LP" 10)" '(.fail // 0) == 0 and (.v1 // 0) + (.v2 // 0) == 10'
	req "http://127.0.0.1:$ADMIN/ready"
	check_eq "$M: 7: still LIVE" "$CODE" 200
	start_server "$slog2" "$CURRENT"
	check_line "$M: 7: restarted server ready" "$SLOG" '^READY listen=unix:'
	check_stat_wait control_plane.connected_state == 1 12
	check_ack "7: CDS ACKed by the restarted server" "$C" 5
	check_ack "7: LDS ACKed by the restarted server" "$L" 5
	if [ "$M" = delta ]; then
		check_line "$M: 7: reconnect sends initial_resource_versions (CDS)" "$SLOG" \
			"^REQUEST stream=1 mode=delta type=$C nonce= .*initial_resource_versions=[^ ]*svc-v1=[0-9a-f]{16}"
		check_line "$M: 7: ... and for EDS" "$SLOG" \
			"^REQUEST stream=1 mode=delta type=$E nonce= .*initial_resource_versions=[^ ]*svc-v1=[0-9a-f]{16}"
		check_line "$M: 7: ... and for LDS" "$SLOG" \
			"^REQUEST stream=1 mode=delta type=$L nonce= .*initial_resource_versions=[^ ]*main=[0-9a-f]{16}"
		check_line "$M: 7: so no cluster is resent" "$SLOG" \
			"^SEND stream=1 mode=delta type=$C version=v1 nonce=[0-9]+ resources= removed=\$"
	else
		check_line "$M: 7: reconnect sends the last accepted version" "$SLOG" \
			"^REQUEST stream=1 mode=sotw type=$C version=v[0-9]+ nonce= "
	fi
	sleep 0.3
	if [ "$lm0" = missing ]; then
		_t_fail "$M: 7: unchanged listeners untouched by the resubscription" "no stat listener_manager.listener_modified"
	else
		check_eq "$M: 7: unchanged listeners untouched by the resubscription (listener_modified)" \
			"$(xstat listener_manager.listener_modified)" "$lm0"
	fi
	check_json "$M: 7: traffic after the reconnect" "$(count "$LP" 10)" '(.fail // 0) == 0 and (.v1 // 0) + (.v2 // 0) == 10'
}

case4() {
	local ka nw wk lm0 lr0 warm_ok=0
	case_start 4 "a changed listener drains without loss, a removed one stops" serving || return
	wait_body "$WP" v1 1 && warm_ok=1
	lm0=$(xstat listener_manager.listener_modified)
	lr0=$(xstat listener_manager.listener_removed)
	bg_load "$M-c4-ka" "$LP" ka
	ka=$LOAD_PID
	bg_load "$M-c4-new" "$LP" new
	nw=$LOAD_PID
	bg_load "$M-c4-warm" "$WP" ka
	wk=$LOAD_PID
	sleep 0.3
	PREFIX=main2
	push
	check_ack "4: LDS with the changed listener ACKed" "$L"
	check_stat_wait listener_manager.listener_modified ">=" "$((${lm0/missing/0} + 1))"
	check_stat_wait http.main2.downstream_rq_total ">" 0
	# the old listener's connections close within --drain-time-s (2 s); the clients go on
	sleep 3
	stop_load "$M-c4-ka" "$ka"
	stop_load "$M-c4-new" "$nw"
	stop_load "$M-c4-warm" "$wk"
	check_load "$M-c4-ka" "$M: 4: keep-alive client across the listener change"
	check_range "$M: 4: keep-alive client: at most 2 stale-connection retries" \
		"$(grep -c '^retry ' "$TMP/$M-c4-ka.out")" 0 2
	check_range "$M: 4: the old listener's keep-alive connection was drained (the client reconnected)" \
		"$(sed -n 's/^done conns=//p' "$TMP/$M-c4-ka.out")" 2 1000
	check_load "$M-c4-new" "$M: 4: new-connection client across the listener change"
	if [ "$warm_ok" = 1 ]; then
		check_load "$M-c4-warm" "$M: 4: client of the unchanged listener"
		check_contains "$M: 4: the unchanged listener's connection is not touched" \
			"$(tail -n 1 "$TMP/$M-c4-warm.out")" "done conns=1"
	else
		_t_fail "$M: 4: the unchanged listener is not touched" "not run: listener 'warm' (case 5) does not serve"
	fi
	check_stat_wait listener_manager.total_listeners_draining == 0 4

	MAIN=0
	push
	check_ack "4: LDS without the listener ACKed" "$L"
	if wait_refused "$LP" 5; then
		_t_ok "$M: 4: the removed listener's port refuses connections"
	else
		_t_fail "$M: 4: the removed listener's port refuses connections" "still accepted after 5 s"
	fi
	check_stat_wait listener_manager.listener_removed ">=" "$((${lr0/missing/0} + 1))"
	wait_json "$M: 4: config_dump no longer lists 'main'" Listeners "" \
		'. != null and ([.dynamic_listeners[]? | .name] | index("main") | not)'
}

run_traffic() { # MODE API_TYPE
	local boot i fail0=$_T_FAIL
	M=$1
	CTX="init: "
	CASE="$M: initial fetch"
	echo "# $M: traffic setup and initial fetch at ${SECONDS} s"
	if [ "$SECONDS" -ge "$MODE_DEADLINE" ]; then
		_t_fail "$M: cases 2-8" "not run: the mode's time budget (${MODE_BUDGET} s) is spent"
		return
	fi
	ports ADMIN LP WP || {
		_t_fail "$M: ports" "no free ports"
		return
	}
	SOCK="$TMP/$M.sock"
	CURRENT="$TMP/$M-current.json"
	reset_knobs
	ROUTE_R=0 # first without the route configuration: the listener must wait for it
	write_resources || return

	# skiff first, with no control plane: INITIALIZING
	boot="$TMP/$M-boot.json"
	bootstrap "$2" "traffic-$M" "$SOCK" "$ADMIN" >"$boot"
	start_skiff -c "$boot" --concurrency 2 --drain-time-s 2
	if ! wait_admin "$ADMIN"; then
		_t_fail "$M: skiff starts" "admin never answered; log: $(skiff_log_tail)"
		return
	fi
	check_eq "$M: no control plane: server.state 3 (INITIALIZING)" "$(xstat server.state)" 3
	req "http://127.0.0.1:$ADMIN/ready"
	check_eq "$M: no control plane: /ready 503" "$CODE" 503
	check_eq "$M: no control plane: control_plane.connected_state 0" "$(xstat control_plane.connected_state)" 0

	start_server "$TMP/$M-server1.log" "$CURRENT"
	check_line "$M: server ready" "$SLOG" '^READY listen=unix:' || return
	if ! check_ack "CDS ACKed" "$C" 10; then
		_t_fail "$M: cases 2-8" "not run: skiff never ACKed CDS; skiff log: $(skiff_log_tail)"
		stop_skiff_checked
		stop_server
		return
	fi
	check_stat_wait control_plane.connected_state == 1
	check_ack "EDS ACKed" "$E"
	check_ack "LDS ACKed" "$L"
	check_line "$M: EDS subscribed by service_name (svc-v2-eds)" "$SLOG" \
		"^REQUEST stream=[0-9]+ mode=$M type=$E .*(names|subscribe)=([^ ]*,)?svc-v2-eds(,| |$)"
	check_line "$M: RDS subscribed to the listener's route 'r'" "$SLOG" \
		"^REQUEST stream=[0-9]+ mode=$M type=$R .*(names|subscribe)=([^ ]*,)?r(,| |$)"
	sleep 0.3
	check_eq "$M: route configuration missing: still INITIALIZING" "$(xstat server.state)" 3
	req "http://127.0.0.1:$ADMIN/ready"
	check_eq "$M: route configuration missing: /ready 503" "$CODE" 503
	check "$M: route configuration missing: the listener's port refuses connections" refused "$LP"

	ROUTE_R=1
	push
	check_ack "RDS ACKed" "$R"
	check_stat_wait server.state == 0 5
	req "http://127.0.0.1:$ADMIN/ready"
	check_eq "$M: LIVE: /ready 200 LIVE" "$CODE $BODY" "200 LIVE"$'\n'
	check_stat_wait cluster_manager.active_clusters ">=" 3 # xds-grpc, svc-v1, svc-v2
	check_stat_wait cluster_manager.warming_clusters == 0
	check_stat_wait listener_manager.total_listeners_active ">=" 1
	if check "$M: the listener serves v1 (100/0)" wait_body "$LP" v1 3; then
		SERVING=1
	else
		SERVING=0
	fi

	case2
	case3
	case5
	case6
	case8
	case7
	case4

	stop_skiff_checked
	stop_server
	if [ "$_T_FAIL" -ne "$fail0" ]; then
		for i in "$TMP/$M-server1.log" "$TMP/$M-server2.log"; do
			[ -f "$i" ] || continue
			echo "--- $M: NACKs in $(basename "$i") (cases 3 and 8 expect some)"
			grep '^NACK' "$i" | head -n 5
		done
		echo "--- $M: skiff log (last lines)"
		tail -n 15 "$SKIFF_LOG"
	fi
}

# ======================================================================= main

ports UP1 UP2 DEAD || {
	_t_fail "ports" "no free ports"
	summary
	exit 1
}
"$PYTHON3" "$TMP/up.py" "$TMP/up.ready" "$UP1:v1" "$UP2:v2" >"$TMP/up.log" 2>&1 &
_T_PIDS+=($!)
for i in $(seq 100); do
	[ -e "$TMP/up.ready" ] && break
	sleep 0.05
done
if [ ! -e "$TMP/up.ready" ]; then
	_t_fail "upstreams" "not ready: $(cat "$TMP/up.log")"
	summary
	exit 1
fi

for mode in "sotw GRPC" "delta DELTA_GRPC"; do
	read -r m api <<<"$mode"
	MODE_DEADLINE=$((SECONDS + MODE_BUDGET))
	run_conformance "$m" "$api"
	run_traffic "$m" "$api"
done
if [ -s "$TMP/server.err" ]; then
	_t_fail "xDS server stderr" "$(head -c 600 "$TMP/server.err")"
fi
echo "# ${SECONDS} s"
summary
