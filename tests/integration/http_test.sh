#!/usr/bin/env bash
# The HTTP/1.1 connection manager and router end to end on loopback: python upstreams that
# echo each request as JSON (and record it), curl and raw python sockets as clients. GET and
# POST with Content-Length and chunked bodies, keep-alive and upstream connection reuse,
# pipelining, no route (404), unknown cluster and no healthy host (503), connect failure,
# direct_response, redirect, prefix_rewrite and header changes, x-forwarded-for and
# x-request-id, a 90/10 weighted split and a 0/100 one, the route timeout, smuggling
# attempts that must not reach the upstream, Istio's 15021 health listener shape, Envoy's
# stat names and the access log (text, and json_format: typed values, nested objects,
# omit_empty_values, escaping). A third listener runs envoy.filters.http.cors in Istio's order
# (before the fault filter) with CorsPolicy at the route configuration, virtual host and route
# levels: preflights answered or passed upstream, Access-Control-* on responses and local
# replies, filter_enabled / shadow_enabled, the deprecated cors field, cors.origin_* stats.
. "$(dirname "$0")/lib.sh"

require_tools curl jq python3 || {
	summary
	exit 1
}
[ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3

_H_PIDS=()
_h_cleanup() {
	local rc=$? pid
	for pid in "${_H_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	(exit "$rc")
	_t_cleanup
}
trap _h_cleanup EXIT

# ---------------------------------------------------------------------------------------
# upstream: echoes method, path, headers and body as JSON; appends "METHOD PATH" to
# $TMP/rec.<port>; /slow?ms=N sleeps first; /chunked answers with a chunked body.
cat >"$TMP/up.py" <<'PY'
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def handle_any(self):
        body = b""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        elif self.headers.get("Content-Length"):
            body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(self.server.rec, "a") as f:
            f.write("%s %s\n" % (self.command, self.path))
        if self.path.startswith("/slow"):
            time.sleep(float(self.path.split("=")[1]) / 1000)
        out = json.dumps({"name": self.server.name, "method": self.command, "path": self.path,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": body.decode("latin-1")}).encode()
        self.send_response(200)
        if self.path.startswith("/chunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(out), 7):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(out[i:i + 7]), out[i:i + 7]))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("X-Up", "1")
        if self.path.startswith("/acao"):
            self.send_header("Access-Control-Allow-Origin", "https://from-upstream")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)
    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = handle_any

def main():
    ready = sys.argv[1]
    for spec in sys.argv[2:]:
        port, name = spec.split(":")
        ThreadingHTTPServer.request_queue_size = 128
        s = ThreadingHTTPServer(("127.0.0.1", int(port)), H)
        s.daemon_threads = True
        s.name = name
        s.rec = os.path.join(os.path.dirname(ready), "rec.%s" % port)
        open(s.rec, "a").close()
        threading.Thread(target=s.serve_forever, daemon=True).start()
    open(ready, "w").close()
    parent, deadline = os.getppid(), time.time() + 300
    while os.getppid() == parent and time.time() < deadline:
        time.sleep(0.2)
main()
PY

# raw client: sends argv[2] (python bytes literal) to 127.0.0.1:argv[1]; prints the status
# line of the first response (or CLOSED/TIMEOUT) and whether the connection was then closed
cat >"$TMP/raw.py" <<'PY'
import ast, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.sendall(eval(sys.argv[2]))  # the test's own expressions
buf, closed = b"", False
deadline = time.time() + 3
while time.time() < deadline:
    try:
        d = s.recv(65536)
    except socket.timeout:
        break
    except ConnectionResetError:
        closed = True
        break
    if not d:
        closed = True
        break
    buf += d
    if b"\r\n\r\n" in buf and b"connection: close" not in buf.lower():
        break
line = buf.split(b"\r\n", 1)[0].decode("latin-1") if buf else "NOTHING"
print(line + (" CLOSED" if closed else " OPEN"))
PY

# weighted client: N requests to PATH over one keep-alive connection; prints {name: count}
cat >"$TMP/split.py" <<'PY'
import http.client, json, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
counts = {}
for i in range(n):
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    k = json.loads(body)["name"] if r.status == 200 else "status%d" % r.status
    counts[k] = counts.get(k, 0) + 1
print(json.dumps(counts, sort_keys=True))
PY


recs() { # PORT [PATTERN]: requests the upstream on PORT recorded (matching PATTERN)
	if [ -e "$TMP/rec.$1" ]; then grep -c -- "${2:-}" "$TMP/rec.$1"; else echo 0; fi
}

ports ADMIN LP HP CP UA UW1 UW2 US UAG DEAD || exit 1
"$PYTHON3" "$TMP/up.py" "$TMP/up.ready" "$UA:a" "$UW1:w1" "$UW2:w2" "$US:smug" "$UAG:agent" >"$TMP/up.log" 2>&1 &
_H_PIDS+=($!)
for i in $(seq 100); do [ -e "$TMP/up.ready" ] && break; sleep 0.05; done
[ -e "$TMP/up.ready" ] || _t_fail "upstreams" "not ready: $(cat "$TMP/up.log")"

cluster() { # NAME PORT... (no port: no endpoints)
	local name=$1 eps="" p
	shift
	for p in "$@"; do
		eps="$eps${eps:+,}{\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$p}}}}"
	done
	echo "{\"name\":\"$name\",\"type\":\"STATIC\",\"connect_timeout\":\"0.5s\",\"load_assignment\":{\"cluster_name\":\"$name\",\"endpoints\":[{\"lb_endpoints\":[$eps]}]}}"
}
ROUTER='{"name":"envoy.filters.http.router","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}'
HCM_TYPE=type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
FAULT_TYPE=type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
CORS_TYPE=type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy

cat >"$TMP/http.json" <<EOF
{"node": {"id": "http-test", "cluster": "t"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $ADMIN}}},
 "static_resources": {
  "clusters": [$(cluster a "$UA"), $(cluster w1 "$UW1"), $(cluster w2 "$UW2"), $(cluster smug "$US"),
               $(cluster empty), $(cluster dead "$DEAD"),
               {"name": "agent", "alt_stat_name": "agent;", "type": "STATIC", "connect_timeout": "0.250s",
                "lb_policy": "ROUND_ROBIN", "load_assignment": {"cluster_name": "agent", "endpoints": [{"lb_endpoints": [
                 {"endpoint": {"address": {"socket_address": {"protocol": "TCP", "address": "127.0.0.1", "port_value": $UAG}}}}]}]}}],
  "listeners": [
   {"name": "main", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $LP}},
    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
      "@type": "$HCM_TYPE", "stat_prefix": "ing", "use_remote_address": true,
      "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": "$TMP/access.log"}},
       {"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": "$TMP/access.json", "log_format": {"json_format": {
          "code": "%RESPONSE_CODE%", "method": "%REQ(:METHOD)%", "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
          "sent": "%BYTES_SENT%", "flags": "%RESPONSE_FLAGS%", "route": "%ROUTE_NAME%", "ua": "%REQ(USER-AGENT)%",
          "upstream": {"host": "%UPSTREAM_HOST%", "cluster": "%UPSTREAM_CLUSTER%"},
          "line": "%REQ(:METHOD)% %REQ(X-NOPE)% %PROTOCOL%", "tags": ["static", "%REQ(X-TAG)%"], "v": 1.5,
          "nope": "%REQ(X-NOPE)%"}}}},
       {"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": "$TMP/access.omit.json", "log_format": {"omit_empty_values": true, "json_format": {
          "code": "%RESPONSE_CODE%", "nope": "%REQ(X-NOPE)%", "tag": "%REQ(X-TAG)%"}}}},
       {"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": "$TMP/access.str.json", "json_format": {"code": "%RESPONSE_CODE%", "nope": "%REQ(X-NOPE)%"}}}],
      "http_filters": [
        {"name": "istio.metadata_exchange", "typed_config": {"@type": "type.googleapis.com/io.istio.http.peer_metadata.Config"}},
        {"name": "envoy.filters.http.grpc_stats", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig"}},
        {"name": "envoy.filters.http.fault", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
        {"name": "envoy.filters.http.cors", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
        $ROUTER],
      "route_config": {"name": "main", "virtual_hosts": [
        {"name": "other", "domains": ["other.example"], "routes": [{"match": {"prefix": "/only"}, "route": {"cluster": "a"}}]},
        {"name": "all", "domains": ["*"], "routes": [
          {"match": {"prefix": "/direct"}, "direct_response": {"status": 200, "body": {"inline_string": "hello direct"}}},
          {"match": {"path": "/redir"}, "redirect": {"path_redirect": "/new", "response_code": "FOUND"}},
          {"match": {"prefix": "/api/"}, "route": {"cluster": "a", "prefix_rewrite": "/v2/"},
           "request_headers_to_add": [{"header": {"key": "x-added", "value": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}}],
           "request_headers_to_remove": ["x-remove-me"],
           "response_headers_to_add": [{"header": {"key": "x-resp", "value": "yes"}}],
           "response_headers_to_remove": ["x-up"]},
          {"match": {"prefix": "/split"}, "route": {"weighted_clusters": {"clusters": [
            {"name": "w1", "weight": 90}, {"name": "w2", "weight": 10}]}}},
          {"match": {"prefix": "/zero"}, "route": {"weighted_clusters": {"clusters": [
            {"name": "w1", "weight": 0}, {"name": "w2", "weight": 100}]}}},
          {"match": {"prefix": "/slow"}, "route": {"cluster": "a", "timeout": "1s"}},
          {"match": {"prefix": "/missing"}, "route": {"cluster": "nope"}},
          {"match": {"prefix": "/empty"}, "route": {"cluster": "empty"}},
          {"match": {"prefix": "/dead"}, "route": {"cluster": "dead"}},
          {"match": {"prefix": "/smug"}, "route": {"cluster": "smug"}},
          {"match": {"prefix": "/"}, "route": {"cluster": "a"}}]}]}}}]}]},
   {"name": "0.0.0.0_15021", "address": {"socket_address": {"protocol": "TCP", "address": "127.0.0.1", "port_value": $HP}},
    "ignore_global_conn_limit": true, "bypass_overload_manager": true,
    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
      "@type": "$HCM_TYPE", "codec_type": "AUTO", "stat_prefix": "agent",
      "route_config": {"virtual_hosts": [{"name": "backend", "domains": ["*"], "routes": [
        {"match": {"prefix": "/healthz/ready"}, "route": {"cluster": "agent"}}]}]},
      "http_filters": [$ROUTER]}}]}]},
   {"name": "cors", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $CP}},
    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
      "@type": "$HCM_TYPE", "stat_prefix": "cors_in",
      "http_filters": [
        {"name": "envoy.filters.http.cors", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
        {"name": "envoy.filters.http.fault", "typed_config": {"@type": "$FAULT_TYPE"}},
        $ROUTER],
      "route_config": {"name": "cors",
        "typed_per_filter_config": {"envoy.filters.http.cors": {"@type": "$CORS_TYPE", "max_age": "600"}},
        "virtual_hosts": [
        {"name": "legacy", "domains": ["legacy.example"],
         "cors": {"allow_origin_string_match": [{"exact": "https://legacy.example"}], "allow_methods": "GET"},
         "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "a"}}]},
        {"name": "app", "domains": ["*"],
         "typed_per_filter_config": {"envoy.filters.http.cors": {"@type": "$CORS_TYPE",
           "allow_origin_string_match": [{"exact": "https://app.example"}, {"suffix": ".trusted.example"},
             {"contains": ".re."}, {"prefix": "HTTPS://UP.", "ignore_case": true}],
           "allow_methods": "GET, POST", "allow_headers": "x-a, content-type", "expose_headers": "x-up",
           "allow_credentials": true}},
         "routes": [
          {"match": {"prefix": "/cors/route"}, "route": {"cluster": "a"},
           "typed_per_filter_config": {"envoy.filters.http.cors": {"@type": "$CORS_TYPE",
             "allow_origin_string_match": [{"exact": "https://route.example"}], "allow_methods": "PUT"}}},
          {"match": {"prefix": "/cors/off"}, "route": {"cluster": "a"},
           "typed_per_filter_config": {"envoy.filters.http.cors": {"@type": "$CORS_TYPE",
             "filter_enabled": {"default_value": {"numerator": 0}}}}},
          {"match": {"prefix": "/cors/shadow"}, "route": {"cluster": "a"},
           "typed_per_filter_config": {"envoy.filters.http.cors": {"@type": "$CORS_TYPE",
             "filter_enabled": {"default_value": {"numerator": 0}}, "shadow_enabled": {"default_value": {"numerator": 100}}}}},
          {"match": {"prefix": "/cors/strict"}, "route": {"cluster": "a"},
           "typed_per_filter_config": {"envoy.filters.http.cors": {"@type": "$CORS_TYPE",
             "forward_not_matching_preflights": false}}},
          {"match": {"prefix": "/cors/direct"}, "direct_response": {"status": 200, "body": {"inline_string": "direct"}}},
          {"match": {"prefix": "/cors/fault"}, "route": {"cluster": "a"},
           "typed_per_filter_config": {"envoy.filters.http.fault": {"@type": "$FAULT_TYPE",
             "abort": {"http_status": 503, "percentage": {"numerator": 100}}}}},
          {"match": {"prefix": "/cors/nocluster"}, "route": {"cluster": "nope"}},
          {"match": {"prefix": "/"}, "route": {"cluster": "a"}}]}]}}}]}]}]}}
EOF
jq -e . "$TMP/http.json" >/dev/null || _t_fail "bootstrap" "invalid JSON"
# HTTP_TEST_GDB=1 runs skiff under gdb (a backtrace lands in its log on a crash)
if [ -n "${HTTP_TEST_GDB:-}" ]; then
	_T_NSTART=$((_T_NSTART + 1))
	SKIFF_LOG="$TMP/skiff.$_T_NSTART.log"
	(cd "$TMP" && exec gdb -q -batch -ex run -ex bt --args "$SKIFF_BIN" -c http.json --concurrency 2) >"$SKIFF_LOG" 2>&1 &
	SKIFF_PID=$!
	_T_PIDS+=("$SKIFF_PID")
else
	start_skiff -c http.json --concurrency 2
fi
if ! wait_admin "$ADMIN"; then
	_t_fail "startup" "admin never answered; log: $(tail -n 20 "$SKIFF_LOG")"
	summary
	exit 1
fi
for i in $(seq 60); do
	timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$LP" 2>/dev/null && break
	sleep 0.05
done
U="http://127.0.0.1:$LP"

# ---------------------------------------------------------------- basic forwarding
req "$U/hello?x=1"
check_eq "GET: 200" "$CODE" 200
check_json "GET: upstream saw the path" "$BODY" '.name == "a" and .method == "GET" and .path == "/hello?x=1"'
check_json "GET: x-forwarded-for is the client" "$BODY" '.headers["x-forwarded-for"] == "127.0.0.1"'
check_json "GET: x-forwarded-proto" "$BODY" '.headers["x-forwarded-proto"] == "http"'
check_json "GET: x-request-id is a uuid4" "$BODY" '.headers["x-request-id"] | test("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")'
check_json "GET: the client's x-forwarded-for is kept and appended to" \
	"$(curl -s -H 'X-Forwarded-For: 10.0.0.9' "$U/xff")" '.headers["x-forwarded-for"] == "10.0.0.9,127.0.0.1"'
check_json "GET: no hop-by-hop header upstream" "$(curl -s -H 'Keep-Alive: timeout=5' -H 'Connection: keep-alive, x-hop' "$U/hop")" \
	'(.headers | has("keep-alive") | not) and (.headers.connection // "" | test("x-hop") | not)'
H=$(curl -s -D - -o /dev/null "$U/h")
check_match "response: server: envoy" "$H" "^server: envoy"
check_match "response: x-envoy-upstream-service-time" "$H" "^x-envoy-upstream-service-time: [0-9]+"

req -X POST --data-binary 'name=value&n=1' "$U/post"
check_json "POST Content-Length: body intact" "$BODY" '.method == "POST" and .body == "name=value&n=1" and .headers["content-length"] == "14"'
req -X POST -H 'Transfer-Encoding: chunked' --data-binary @<(head -c 70000 /dev/zero | tr '\0' 'z') "$U/chunky"
check_json "POST chunked (70000 bytes): body intact, re-framed chunked" "$BODY" \
	'(.body | length) == 70000 and .headers["transfer-encoding"] == "chunked"'
head -c 3000000 /dev/urandom | base64 -w 0 >"$TMP/big"
req -X POST --data-binary @"$TMP/big" "$U/big"
check_eq "POST 4 MB (over the 1 MiB buffer limit): body intact" "$(jq -j .body <<<"$BODY" | md5sum)" "$(md5sum <"$TMP/big")"
req "$U/chunked-response"
check_json "chunked response: reassembled" "$BODY" '.path == "/chunked-response"'

# ---------------------------------------------------------------- keep-alive and pooling
BEFORE=$(stat cluster.a.upstream_cx_total)
OUT=$(curl -s -w '%{num_connects} %{http_code}\n' -o /dev/null "$U/k1" -o /dev/null "$U/k2" -o /dev/null "$U/k3" \
	-o /dev/null "$U/k4" -o /dev/null "$U/k5" -o /dev/null "$U/k6")
check_eq "keep-alive: 6 requests, one client connection" "$(awk '{s += $1} END {print s}' <<<"$OUT")" 1
check_eq "keep-alive: all 200" "$(awk '{print $2}' <<<"$OUT" | sort -u)" 200
AFTER=$(stat cluster.a.upstream_cx_total)
check_range "upstream connections reused: cluster.a.upstream_cx_total grew by < 6" "$(awk -v a="$AFTER" -v b="$BEFORE" 'BEGIN { print a - b }')" 0 2

OUT=$(printf 'GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\nGET /direct HTTP/1.1\r\nHost: x\r\n\r\nGET /p4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | http_exchange "$LP")
check_eq "pipelining: 4 responses in order, then close" \
	"$(sed -E 's/^([0-9]+) "(.*)"$/\1 \2/; s/\\"/"/g' <<<"$OUT" | sed -nE 's/^200 .*"path": "([^"]*)".*/\1/p; s/^200 hello direct$/direct/p; /^CLOSED$/p' | tr '\n' ' ')" \
	"/p1 /p2 direct /p4 CLOSED "

# ---------------------------------------------------------------- local replies
req -H 'Host: other.example' "$U/x"
check_eq "no route: 404" "$CODE" 404
check_stat http.ing.no_route 1
req "$U/missing"
check_eq "unknown cluster: 503" "$CODE" 503
check_stat http.ing.no_cluster 1
req "$U/empty"
check_eq "no healthy host: 503" "$CODE:$BODY" "503:no healthy upstream"
check_stat cluster.empty.upstream_cx_none_healthy 1
req "$U/dead"
check_eq "connect failure: 503" "$CODE" 503
check_contains "connect failure: Envoy's body" "$BODY" "upstream connect error or disconnect/reset before headers"
check_stat cluster.dead.upstream_cx_connect_fail 1
req "$U/direct/x"
check_eq "direct_response" "$CODE:$BODY" "200:hello direct"
check_stat http.ing.rq_direct_response 2 # with the pipelined one
H=$(curl -s -D - -o /dev/null "$U/redir?q=1")
check_match "redirect: 302" "$H" "^HTTP/1.1 302"
check_match "redirect: location" "$H" "^location: http://127.0.0.1:$LP/new\?q=1"

# ---------------------------------------------------------------- rewrite and headers
H=$(curl -s -D "$TMP/h" -H 'X-Remove-Me: 1' -H 'X-Keep: 2' "$U/api/items?q=1")
check_json "prefix_rewrite: /api/ -> /v2/" "$H" '.path == "/v2/items?q=1"'
check_json "request header removed, others kept" "$H" '(.headers | has("x-remove-me") | not) and .headers["x-keep"] == "2"'
check_json "request header added with %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%" "$H" '.headers["x-added"] == "127.0.0.1"'
check_json "x-envoy-original-path" "$H" '.headers["x-envoy-original-path"] == "/api/items?q=1"'
check_match "response header added" "$(cat "$TMP/h")" "^x-resp: yes"
check_not_contains "response header removed" "$(cat "$TMP/h")" "X-Up"

# ---------------------------------------------------------------- weighted clusters
OUT=$("$PYTHON3" "$TMP/split.py" "$LP" /split 2000)
W2=$(jq -r '.w2 // 0' <<<"$OUT")
W1=$(jq -r '.w1 // 0' <<<"$OUT")
echo "# 90/10 split over 2000 requests: $OUT"
check_eq "90/10: every request answered by w1 or w2" "$((W1 + W2))" 2000
# binomial n=2000, p=0.1: mean 200, sd 13.4; 99.9% two-sided: +-3.29 sd
check_range "90/10: w2 share within the 99.9% binomial bound" "$W2" 156 244
OUT=$("$PYTHON3" "$TMP/split.py" "$LP" /zero 300)
check_eq "0/100: all to w2" "$OUT" '{"w2": 300}'
check_eq "0/100: the zero-weight cluster saw nothing" "$(recs "$UW1" /zero)" 0

# ---------------------------------------------------------------- route timeout
T0=$(date +%s%N)
req "$U/slow?ms=3000"
T1=$(date +%s%N)
check_eq "route timeout: 504" "$CODE:$BODY" "504:upstream request timeout"
check_range "route timeout: answered after ~1 s" "$(((T1 - T0) / 1000000))" 900 2500
check_stat cluster.a.upstream_rq_timeout 1

# ---------------------------------------------------------------- smuggling
raw() { "$PYTHON3" "$TMP/raw.py" "$LP" "$1"; }
check_match "CL+TE: 400, closed" "$(raw "b'POST /smug HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'")" '^HTTP/1.1 400 .* CLOSED$'
check_match "duplicate differing Content-Length: 400" "$(raw "b'POST /smug HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde'")" '^HTTP/1.1 400 .* CLOSED$'
check_match "obs-fold: 400" "$(raw "b'GET /smug HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n'")" '^HTTP/1.1 400 .* CLOSED$'
check_match "NUL in a header value: 400" "$(raw "b'GET /smug HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n'")" '^HTTP/1.1 400 .* CLOSED$'
check_match "TE: chunked, identity: 400/501" "$(raw "b'POST /smug HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n'")" '^HTTP/1.1 (400|501) .* CLOSED$'
check_match "bad chunk size: 400" "$(raw "b'POST /smug HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'")" '^HTTP/1.1 400 .* CLOSED$'
check_match "headers over 60 KiB: 431" "$(raw "b'GET /smug HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'a' * 70000 + b'\r\n\r\n'")" '^HTTP/1.1 431 .* CLOSED$'
check_match "101 headers: 431" "$(raw "b'GET /smug HTTP/1.1\r\nHost: x\r\n' + b''.join(b'X-H%d: v\r\n' % i for i in range(101)) + b'\r\n'")" '^HTTP/1.1 431 .* CLOSED$'
sleep 0.3
check_eq "smuggling: the upstream never saw a bad request" "$(recs "$US")" 0
check_match "after a smuggling attempt the same listener still serves" "$(raw "b'GET /smug/ok HTTP/1.1\r\nHost: x\r\n\r\n'")" '^HTTP/1.1 200 '
check_eq "smuggling: only the good request reached the upstream" "$(recs "$US")" 1

# ---------------------------------------------------------------- Istio's 15021 listener
req "http://127.0.0.1:$HP/healthz/ready"
check_eq "15021 shape: /healthz/ready -> agent" "$CODE:$(jq -r .name <<<"$BODY")" "200:agent"
req "http://127.0.0.1:$HP/other"
check_eq "15021 shape: other paths 404" "$CODE" 404
check_stat "cluster.agent;.upstream_rq_200" 1

# ---------------------------------------------------------------- CORS
C="http://127.0.0.1:$CP"
hdr() { # NAME HEADERS: the value of a header in a curl -D dump (the first one), "" when absent
	printf '%s\n' "$2" | tr -d '\r' | awk -v n="$1" 'tolower($0) ~ "^" n ": " { sub(/^[^:]*: /, ""); print; exit }'
}
pre() { # PATH ORIGIN [CURL-ARGS...]: a preflight; sets CODE, H (the response head), BODY
	local path=$1 origin=$2
	shift 2
	H=$(curl -s -D - -o "$TMP/pre.body" -X OPTIONS -H "Origin: $origin" -H 'Access-Control-Request-Method: POST' \
		-H 'Access-Control-Request-Headers: x-a' "$@" "$C$path")
	CODE=$(printf '%s\n' "$H" | head -n 1 | awk '{print $2}')
	BODY=$(cat "$TMP/pre.body")
}
OPTS0=$(recs "$UA" '^OPTIONS')
V0=$(stat http.cors_in.cors.origin_valid)
pre /cors/x https://app.example
check_eq "CORS preflight from an allowed origin: answered 200 by skiff" "$CODE:$BODY" "200:"
check_eq "... access-control-allow-origin is the origin" "$(hdr access-control-allow-origin "$H")" https://app.example
check_eq "... allow-credentials" "$(hdr access-control-allow-credentials "$H")" true
check_eq "... allow-methods (virtual host)" "$(hdr access-control-allow-methods "$H")" "GET, POST"
check_eq "... allow-headers (virtual host)" "$(hdr access-control-allow-headers "$H")" "x-a, content-type"
check_eq "... max-age (route configuration level)" "$(hdr access-control-max-age "$H")" 600
check_eq "... expose-headers" "$(hdr access-control-expose-headers "$H")" x-up
check_eq "... never reached the upstream" "$(recs "$UA" '^OPTIONS')" "$OPTS0"
check_stat http.cors_in.cors.origin_valid $((V0 + 1))
H=$(curl -s -D - -o "$TMP/b" -H 'Origin: https://x.trusted.example' "$C/cors/get")
check_json "CORS GET from an allowed origin (suffix): forwarded" "$(cat "$TMP/b")" '.path == "/cors/get" and .headers.origin == "https://x.trusted.example"'
check_eq "... access-control-allow-origin added" "$(hdr access-control-allow-origin "$H")" https://x.trusted.example
check_eq "... allow-credentials and expose-headers" "$(hdr access-control-allow-credentials "$H") $(hdr access-control-expose-headers "$H")" "true x-up"
check_eq "... no preflight headers on it" "$(hdr access-control-allow-methods "$H")" ""
check_eq "CORS: contains" "$(hdr access-control-allow-origin "$(curl -s -D - -o /dev/null -H 'Origin: https://abc.re.example' "$C/cors/get")")" https://abc.re.example
check_eq "CORS: prefix with ignore_case" "$(hdr access-control-allow-origin "$(curl -s -D - -o /dev/null -H 'Origin: https://up.example' "$C/cors/get")")" https://up.example
I0=$(stat http.cors_in.cors.origin_invalid)
H=$(curl -s -D - -o /dev/null -H 'Origin: https://evil.example' "$C/cors/get")
check_eq "CORS GET from an origin that does not match: no access-control-allow-origin" "$(hdr access-control-allow-origin "$H")" ""
check_stat http.cors_in.cors.origin_invalid $((I0 + 1))
pre /cors/x https://evil.example
check_json "CORS preflight from an origin that does not match: passed upstream unchanged" "$BODY" '.method == "OPTIONS" and .headers["access-control-request-method"] == "POST"'
check_eq "... without CORS headers" "$(hdr access-control-allow-origin "$H")$(hdr access-control-allow-methods "$H")" ""
pre /cors/strict https://evil.example
check_eq "forward_not_matching_preflights false: answered 200 by skiff" "$CODE:$BODY" "200:"
check_eq "... without access-control-allow-origin" "$(hdr access-control-allow-origin "$H")" ""
check_eq "... with the policy's methods" "$(hdr access-control-allow-methods "$H")" "GET, POST"
pre /cors/route https://route.example
check_eq "route-level policy: its origins and methods, the virtual host's headers and credentials" \
	"$CODE|$(hdr access-control-allow-origin "$H")|$(hdr access-control-allow-methods "$H")|$(hdr access-control-allow-headers "$H")|$(hdr access-control-allow-credentials "$H")" \
	"200|https://route.example|PUT|x-a, content-type|true"
pre /cors/route https://app.example
check_json "... the route's origin list replaces the virtual host's: app.example's preflight goes upstream" "$BODY" '.method == "OPTIONS"'
pre /cors/off https://app.example
check_json "filter_enabled 0%: the preflight goes upstream" "$BODY" '.method == "OPTIONS" and .path == "/cors/off"'
check_eq "... no CORS headers" "$(hdr access-control-allow-origin "$H")" ""
V0=$(stat http.cors_in.cors.origin_valid)
H=$(curl -s -D - -o /dev/null -H 'Origin: https://app.example' "$C/cors/shadow")
check_eq "shadow_enabled: no CORS headers" "$(hdr access-control-allow-origin "$H")" ""
check_stat http.cors_in.cors.origin_valid $((V0 + 1))
H=$(curl -s -D - -o "$TMP/b" -H 'Origin: https://app.example' "$C/cors/direct")
check_eq "direct_response routes: the CORS filter leaves them alone (Envoy)" "$(cat "$TMP/b")|$(hdr access-control-allow-origin "$H")" "direct|"
H=$(curl -s -D - -o /dev/null -H 'Origin: https://app.example' "$C/cors/fault")
check_match "a fault abort after the CORS filter: 503" "$H" "^HTTP/1.1 503"
check_eq "... still carries access-control-allow-origin" "$(hdr access-control-allow-origin "$H")" https://app.example
H=$(curl -s -D - -o /dev/null -H 'Origin: https://app.example' "$C/cors/nocluster")
check_eq "a local reply (unknown cluster, 503) carries access-control-allow-origin" \
	"$(printf '%s\n' "$H" | head -n 1 | awk '{print $2}') $(hdr access-control-allow-origin "$H")" "503 https://app.example"
H=$(curl -s -D - -o /dev/null -H 'Origin: https://app.example' "$C/acao")
check_eq "the upstream's access-control-allow-origin is replaced, once" \
	"$(printf '%s\n' "$H" | grep -ci '^access-control-allow-origin:') $(hdr access-control-allow-origin "$H")" "1 https://app.example"
H=$(curl -s -D - -o /dev/null "$C/acao")
check_eq "... and kept on a request without Origin" "$(hdr access-control-allow-origin "$H")" https://from-upstream
H=$(curl -s -D - -o /dev/null -H 'Host: legacy.example' -H 'Origin: https://legacy.example' "$C/x")
check_eq "the deprecated cors field is ignored when a level has a typed CorsPolicy (Envoy)" "$(hdr access-control-allow-origin "$H")" ""

# ---------------------------------------------------------------- JSON access logs
req -A 'we"ird\agent' -H 'x-tag: t1' "$U/jsonlog?a=1"
check_eq "json log request: 200" "$CODE" 200
sleep 0.2
check_eq "json_format: one line per request, as the text log" "$(wc -l <"$TMP/access.json")" "$(wc -l <"$TMP/access.log")"
check "json_format: every line is a JSON object" jq -e -s 'length > 0 and all(type == "object")' "$TMP/access.json"
N=$(grep -n '"/jsonlog?a=1"' "$TMP/access.json" | head -n 1 | cut -d: -f1)
L=$(sed -n "${N:-1}p" "$TMP/access.json")
check_json "json_format: typed values (numbers, strings, null), nested object and list" "$L" \
	'.code == 200 and .method == "GET" and .path == "/jsonlog?a=1" and (.sent | type) == "number" and .sent > 0
	 and .flags == "-" and .route == null and .nope == null and .upstream.cluster == "a"
	 and (.upstream.host | test("^127\\.0\\.0\\.1:[0-9]+$")) and .line == "GET - HTTP/1.1"
	 and .tags == ["static", "t1"] and .v == 1.5'
check_json "json_format: a header with quotes and a backslash, escaped" "$L" '.ua == "we\"ird\\agent"'
check_eq "json_format: keys in the configured order" "$(jq -c keys_unsorted <<<"$L")" \
	'["code","method","path","sent","flags","route","ua","upstream","line","tags","v","nope"]'
check_eq "omit_empty_values: null members left out" "$(sed -n "${N:-1}p" "$TMP/access.omit.json")" '{"code":200,"tag":"t1"}'
check_eq "the deprecated json_format: every value a string, \"-\" when empty" "$(sed -n "${N:-1}p" "$TMP/access.str.json")" \
	'{"code":"200","nope":"-"}'
L=$(grep '"path":"/x"' "$TMP/access.json" | head -n 1)
check_json "json_format: no route is code 404, flags NR, no upstream host (null)" "$L" '.code == 404 and .flags == "NR" and .upstream.host == null'

# ---------------------------------------------------------------- stats
S=$(curl -s "http://127.0.0.1:$ADMIN/stats")
for n in http.ing.downstream_rq_total http.ing.downstream_rq_active http.ing.downstream_rq_2xx \
	http.ing.downstream_rq_4xx http.ing.downstream_rq_5xx http.ing.downstream_rq_completed \
	http.ing.downstream_cx_total http.ing.downstream_cx_active http.ing.downstream_cx_http1_total \
	http.ing.downstream_rq_time http.ing.no_route cluster.a.upstream_rq_total \
	cluster.a.upstream_rq_completed cluster.a.upstream_rq_2xx cluster.a.upstream_rq_200 \
	cluster.a.upstream_rq_time cluster.a.upstream_rq_timeout cluster.a.upstream_rq_retry \
	cluster.a.upstream_cx_http1_total; do
	check_match "stat $n exists" "$S" "^$n: "
done
check_range "http.ing.downstream_rq_2xx counts the 200s" "$(stat http.ing.downstream_rq_2xx)" 2300 100000
check_stat http.ing.downstream_rq_active 0
check_eq "cluster.w2.upstream_rq_200 == what w2 answered" "$(stat cluster.w2.upstream_rq_200)" "$((W2 + 300))"
check_eq "cluster.w1.upstream_rq_2xx == upstream_rq_completed" "$(stat cluster.w1.upstream_rq_2xx)" "$(stat cluster.w1.upstream_rq_completed)"

# ---------------------------------------------------------------- access log
LOG=$(cat "$TMP/access.log" 2>/dev/null)
check_match "access log: Envoy's default format for a forwarded request" "$LOG" \
	"^\[[0-9T:.Z-]+\] \"GET /hello\?x=1 HTTP/1.1\" 200 - 0 [0-9]+ [0-9]+ [0-9]+ \"127.0.0.1\" \"curl/[^\"]+\" \"[0-9a-f-]{36}\" \"127.0.0.1:$LP\" \"127.0.0.1:$UA\"$"
check_match "access log: no route is 404 NR" "$LOG" "\"GET /x HTTP/1.1\" 404 NR "
check_match "access log: no healthy upstream is 503 UH" "$LOG" "\"GET /empty HTTP/1.1\" 503 UH "
check_match "access log: route timeout is 504 UT" "$LOG" "\"GET /slow\?ms=3000 HTTP/1.1\" 504 UT "
check_match "access log: the original path of a rewrite" "$LOG" "\"GET /api/items\?q=1 HTTP/1.1\" 200 "

kill -TERM "$SKIFF_PID" 2>/dev/null
if wait_exit "$SKIFF_PID" 3; then
	check_eq "skiff exits 0 on SIGTERM" "$EXIT_CODE" 0
else
	kill -KILL "$SKIFF_PID" 2>/dev/null
	_t_fail "skiff exits within 3 s of SIGTERM" "still running"
fi
check_not_contains "no sanitizer report" "$(cat "$SKIFF_LOG")" "Sanitizer"
[ -n "${HTTP_TEST_GDB:-}" ] && grep -A30 SIGSEGV "$SKIFF_LOG"
summary
