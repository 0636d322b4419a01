#!/usr/bin/env bash
# HTTP circuit breakers end to end, as Envoy applies them: max_requests (503 UO and
# upstream_rq_pending_overflow once that many requests are upstream), max_connections with
# pending requests (a request that finds every allowed connection busy waits for one, body
# unread, and goes when one frees up; upstream_rq_pending_total/_active), and
# max_pending_requests (a full line answers 503 UO). Then request mirroring
# (request_mirror_policies): a copy of each request, body included, reaches the shadow
# cluster with "-shadow" appended to its host (or host_rewrite_literal), its answer dropped;
# runtime_fraction 0 mirrors nothing. One worker, so which request waits is deterministic;
# python upstreams that sleep ?ms=, echo what they received and record it.
. "$(dirname "$0")/lib.sh"

require_tools curl python3 || {
	summary
	exit 1
}
[ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3

_B_PIDS=()
_b_cleanup() {
	local rc=$? pid
	for pid in "${_B_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	(exit "$rc")
	_t_cleanup
}
trap _b_cleanup EXIT

ports ADMIN LP UP UM || exit 1
cat >"$TMP/up.py" <<'PYEOF'
import http.server, socketserver, sys, time, urllib.parse
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_any(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        time.sleep(min(int(q.get("ms", ["0"])[0]), 5000) / 1000.0)
        with open(sys.argv[2], "a") as f:
            f.write("%s %s %s %d\n" % (self.command, self.headers.get("host"), self.path, len(body)))
        out = b"got %d bytes" % len(body)
        self.send_response(200)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_any
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PYEOF
"$PYTHON3" "$TMP/up.py" "$UP" "$TMP/rec.up" >"$TMP/up.log" 2>&1 &
_B_PIDS+=($!)
"$PYTHON3" "$TMP/up.py" "$UM" "$TMP/rec.shadow" >"$TMP/um.log" 2>&1 &
_B_PIDS+=($!)

cluster() { # NAME THRESHOLDS [PORT]
	echo "{\"name\": \"$1\", \"type\": \"STATIC\", \"connect_timeout\": \"1s\",
	  \"circuit_breakers\": {\"thresholds\": [$2]},
	  \"load_assignment\": {\"cluster_name\": \"$1\", \"endpoints\": [{\"lb_endpoints\": [
	    {\"endpoint\": {\"address\": {\"socket_address\": {\"address\": \"127.0.0.1\", \"port_value\": ${3:-$UP}}}}}]}]}}"
}
route() { # PREFIX CLUSTER
	echo "{\"match\": {\"prefix\": \"/$1\"}, \"route\": {\"cluster\": \"$2\", \"timeout\": \"10s\"}}"
}
cat >"$TMP/b.json" <<EOF
{"node": {"id": "breaker-test", "cluster": "t"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $ADMIN}}},
 "static_resources": {
  "clusters": [$(cluster req '{"max_requests": 1}'),
               $(cluster line '{"max_connections": 1, "max_pending_requests": 1}'),
               $(cluster wait '{"max_connections": 1}'), $(cluster main '{}'), $(cluster shadow '{}' "$UM")],
  "listeners": [{"name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $LP}},
    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      "stat_prefix": "b",
      "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": "$TMP/access.log"}}],
      "http_filters": [{"name": "envoy.filters.http.router", "typed_config":
        {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
      "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
        $(route req req), $(route line line), $(route wait wait),
        {"match": {"prefix": "/mirror"}, "route": {"cluster": "main",
          "request_mirror_policies": [{"cluster": "shadow"}]}},
        {"match": {"prefix": "/literal"}, "route": {"cluster": "main",
          "request_mirror_policies": [{"cluster": "shadow", "host_rewrite_literal": "elsewhere.example"}]}},
        {"match": {"prefix": "/never"}, "route": {"cluster": "main",
          "request_mirror_policies": [{"cluster": "shadow", "runtime_fraction": {"default_value": {"numerator": 0}}}]}}]}]}}}]}]}]}}
EOF
start_skiff -c b.json --concurrency 1
if ! wait_admin "$ADMIN"; then
	_t_fail "startup" "admin never answered; log: $(tail -n 20 "$SKIFF_LOG")"
	summary
	exit 1
fi
for _ in $(seq 100); do
	curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$UP/" && break
	sleep 0.05
done
U="http://127.0.0.1:$LP"

# fire N PATH...: the requests start 100 ms apart (so the order is known), each on its own
# connection; their status codes, in that order, end up in $TMP/codes.
fire() {
	local i=0 p pids=()
	rm -f "$TMP"/code.*
	for p in "$@"; do
		curl -s -o "$TMP/body.$i" -w '%{http_code}' --max-time 10 "$U$p" >"$TMP/code.$i" &
		pids+=($!)
		i=$((i + 1))
		sleep 0.1
	done
	wait "${pids[@]}"
	CODES=$(for ((k = 0; k < i; k++)); do cat "$TMP/code.$k"; echo; done | tr '\n' ' ')
	CODES=${CODES% }
}

# ---------------------------------------------------------------- max_requests
fire "/req?ms=800" "/req?ms=0"
check_eq "max_requests 1: the second request is refused while the first is upstream" "$CODES" "200 503"
check_stat cluster.req.upstream_rq_pending_overflow 1
check_eq "max_requests: once the first is done, the next goes" \
	"$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$U/req?ms=0")" 200

# ---------------------------------------------------------------- max_connections + pending
fire "/wait?ms=600" "/wait?ms=0" "/wait?ms=0" "/wait?ms=0"
check_eq "max_connections 1: later requests wait for the connection, none refused" "$CODES" "200 200 200 200"
check_stat cluster.wait.upstream_cx_total 1
check_stat cluster.wait.upstream_rq_pending_total 3
check_stat cluster.wait.upstream_rq_pending_active 0
check_stat cluster.wait.upstream_rq_pending_overflow 0
check_stat cluster.wait.upstream_rq_total 4

# a waiting POST keeps its body: it is read only when the request goes upstream
curl -s -o /dev/null --max-time 10 "$U/wait?ms=600" &
slow=$!
sleep 0.15
got=$(head -c 200000 /dev/zero | tr '\0' 'x' | curl -s --max-time 10 --data-binary @- "$U/wait?ms=0")
wait "$slow"
check_eq "a waiting request's 200000-byte body arrives whole" "$got" "got 200000 bytes"
check_stat cluster.wait.upstream_cx_total 1

# ---------------------------------------------------------------- max_pending_requests
fire "/line?ms=700" "/line?ms=0" "/line?ms=0"
check_eq "max_pending_requests 1: one waits, the next is refused" "$CODES" "200 200 503"
check_stat cluster.line.upstream_rq_pending_overflow 1
check_stat cluster.line.upstream_rq_pending_total 1
check_stat cluster.line.upstream_cx_total 1

# a client that gives up while waiting leaves the line
curl -s -o /dev/null --max-time 10 "$U/line?ms=800" &
slow=$!
sleep 0.15
curl -s -o /dev/null --max-time 0.3 "$U/line?ms=0"
sleep 0.1
check_eq "a waiting request whose client left is out of the line" "$(stat cluster.line.upstream_rq_pending_active)" 0
check_eq "... and the line has room again" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$U/line?ms=0")" 200
wait "$slow"

# ---------------------------------------------------------------- mirroring
shadow_lines() { if [ -e "$TMP/rec.shadow" ]; then cat "$TMP/rec.shadow"; fi; }
check_eq "mirrored: the client gets the real answer" \
	"$(curl -s --max-time 5 -H 'host: svc.example:8080' "$U/mirror/a?x=1")" "got 0 bytes"
got=$(head -c 5000 /dev/zero | tr '\0' 'y' | curl -s --max-time 5 -H 'host: svc.example' --data-binary @- "$U/mirror/b")
check_eq "mirrored POST: the client gets the real answer" "$got" "got 5000 bytes"
curl -s -o /dev/null --max-time 5 -H 'host: svc.example' "$U/literal"
for _ in $(seq 10); do curl -s -o /dev/null --max-time 5 "$U/never"; done
for _ in $(seq 50); do [ "$(shadow_lines | wc -l)" -ge 3 ] && break; sleep 0.1; done
sleep 0.2
S=$(shadow_lines)
check_match "the shadow got the GET, host suffixed before the port" "$S" '^GET svc.example-shadow:8080 /mirror/a\?x=1 0$'
check_match "the shadow got the POST with its whole body" "$S" '^POST svc.example-shadow /mirror/b 5000$'
check_match "host_rewrite_literal names the shadow's host" "$S" '^GET elsewhere.example /literal 0$'
check_not "runtime_fraction 0 mirrors nothing" grep -q /never "$TMP/rec.shadow"
check_eq "the shadow cluster counted its answers" "$(wait_stat cluster.shadow.upstream_rq_200 3)" 3
check_eq "the real cluster answered each request once" "$(grep -c '/mirror\|/literal\|/never' "$TMP/rec.up")" 13

LOG=""
for _ in $(seq 50); do
	LOG=$(cat "$TMP/access.log" 2>/dev/null)
	[[ "$LOG" == *" 503 UO "* ]] && break
	sleep 0.1
done
check_match "access log: an overflow is 503 UO" "$LOG" '"GET /req\?ms=0 HTTP/1.1" 503 UO '
check_match "access log: a full line is 503 UO" "$LOG" '"GET /line\?ms=0 HTTP/1.1" 503 UO '

summary
