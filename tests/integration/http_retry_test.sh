#!/usr/bin/env bash
# The router's retry_policy and hash_policy end to end on loopback, with python upstreams
# whose behaviour depends on the path: /flaky/KEY answers 503 (or ?s=CODE) to the first
# request for KEY and 200 after; /always/KEY answers 503; /reset/KEY closes the first
# connection without answering; /slowfirst/KEY sleeps 1 s on the first request; /slow
# always sleeps 1 s; /busy/KEY answers its first request 503 with x-upstream-busy. Every
# upstream counts requests per "PATH-without-query" in rec.<port> and echoes the x-envoy-*
# request headers it got (as "env").
# Covered: 5xx, gateway-error, retriable-status-codes, reset and connect-failure retries;
# num_retries exhausted (URX); per_try_timeout; the previous_hosts predicate (with a
# RING_HASH cluster whose hashed host is dead: without the predicate every retry goes to the
# dead host again, with it the retry lands on the live one); the max_retries circuit
# breaker (upstream_rq_retry_overflow); no retry for a body over the buffer limit; a small
# POST body replayed intact; hash_policy header, cookie, query_parameter and source_ip.
# A second listener has envoy.filters.http.fault: a filter-level 50% abort (418) counted over
# 400 requests within a binomial bound, per-route 100% abort and 200 ms delay, a per-route
# empty config that turns faults off, and x-envoy-fault-* request headers ignored.
# Also: retry_on retriable-headers (retriable_headers matchers) and reset-before-request (a
# connect failure is retried, a reset after the request went out is not), and the request
# headers x-envoy-retry-on, -max-retries, -retriable-status-codes, -retriable-header-names,
# -upstream-rq-timeout-ms and -upstream-rq-per-try-timeout-ms: honoured for internal requests
# (a single internal x-forwarded-for address), stripped and ignored for external ones, and
# never forwarded upstream.
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

cat >"$TMP/up.py" <<'PY'
import json, os, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def handle_any(self):
        body = b""
        if self.headers.get("Content-Length"):
            body = self.rfile.read(int(self.headers["Content-Length"]))
        key = self.path.split("?")[0]
        with self.server.lock:
            n = self.server.seen.get(key, 0) + 1
            self.server.seen[key] = n
            with open(self.server.rec, "a") as f:
                f.write("%s %s\n" % (self.command, key))
        status = 200
        q = self.path.split("?")[1] if "?" in self.path else ""
        if key.startswith("/flaky/") and n == 1:
            status = int(q[2:]) if q.startswith("s=") else 503
        elif key.startswith("/always/"):
            status = 503
        elif key.startswith("/reset/") and n == 1:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            self.close_connection = True
            return
        elif key.startswith("/slowfirst/") and n == 1:
            time.sleep(1)
        elif key.startswith("/slow/"):
            time.sleep(1)
        busy = key.startswith("/busy/") and n == 1
        if busy:
            status = 503
        env = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-envoy-")}
        out = json.dumps({"name": self.server.name, "n": n, "body": body.decode("latin-1"), "env": env}).encode()
        self.send_response(status)
        if busy:
            self.send_header("X-Upstream-Busy", "yes")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = handle_any

def main():
    ready = sys.argv[1]
    for spec in sys.argv[2:]:
        port, name = spec.split(":")
        ThreadingHTTPServer.request_queue_size = 128
        s = ThreadingHTTPServer(("127.0.0.1", int(port)), H)
        s.daemon_threads = True
        s.name, s.seen, s.lock = name, {}, threading.Lock()
        s.rec = os.path.join(os.path.dirname(ready), "rec.%s" % port)
        open(s.rec, "a").close()
        threading.Thread(target=s.serve_forever, daemon=True).start()
    open(ready, "w").close()
    parent, deadline = os.getppid(), time.time() + 300
    while os.getppid() == parent and time.time() < deadline:
        time.sleep(0.2)
main()
PY

recs() { # PORT PATH: requests the upstream on PORT saw for PATH
	if [ -e "$TMP/rec.$1" ]; then grep -c -- " $2\$" "$TMP/rec.$1"; else echo 0; fi
}

ports ADMIN LP FP U1 U2 H1 H2 H3 DEAD || exit 1
"$PYTHON3" "$TMP/up.py" "$TMP/up.ready" "$U1:u1" "$U2:u2" "$H1:h1" "$H2:h2" "$H3:h3" >"$TMP/up.log" 2>&1 &
_H_PIDS+=($!)
for i in $(seq 100); do [ -e "$TMP/up.ready" ] && break; sleep 0.05; done
[ -e "$TMP/up.ready" ] || _t_fail "upstreams" "not ready: $(cat "$TMP/up.log")"

cluster() { # NAME LB_POLICY EXTRA PORT...
	local name=$1 lb=$2 extra=$3 eps="" p
	shift 3
	for p in "$@"; do
		eps="$eps${eps:+,}{\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$p}}}}"
	done
	echo "{\"name\":\"$name\",\"type\":\"STATIC\",\"connect_timeout\":\"0.5s\",\"lb_policy\":\"$lb\"$extra,\"load_assignment\":{\"cluster_name\":\"$name\",\"endpoints\":[{\"lb_endpoints\":[$eps]}]}}"
}
ROUTER='{"name":"envoy.filters.http.router","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}'
HCM_TYPE=type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
PH='"retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}], "host_selection_retry_max_attempts": "10"'
FAULT_TYPE=type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
NOCB=',"circuit_breakers":{"thresholds":[{"max_retries":0}]}'

cat >"$TMP/retry.json" <<EOF
{"node": {"id": "retry-test", "cluster": "t"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $ADMIN}}},
 "static_resources": {
  "clusters": [$(cluster one ROUND_ROBIN "" "$U1"), $(cluster nocb ROUND_ROBIN "$NOCB" "$U1"),
               $(cluster pair RANDOM "" "$U2" "$DEAD"), $(cluster ringpair RING_HASH "" "$U2" "$DEAD"),
               $(cluster ring3 RING_HASH "" "$H1" "$H2" "$H3"), $(cluster mag3 MAGLEV "" "$H1" "$H2" "$H3")],
  "listeners": [
   {"name": "main", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $LP}},
    "per_connection_buffer_limit_bytes": 32768,
    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
      "@type": "$HCM_TYPE", "stat_prefix": "ing",
      "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": "$TMP/access.log"}}],
      "http_filters": [$ROUTER],
      "route_config": {"name": "main", "virtual_hosts": [
        {"name": "all", "domains": ["*"], "routes": [
          {"match": {"prefix": "/flaky/nocb"}, "route": {"cluster": "nocb", "retry_policy": {"retry_on": "5xx"}}},
          {"match": {"prefix": "/flaky/no5xx"}, "route": {"cluster": "one", "retry_policy": {"retry_on": "connect-failure"}}},
          {"match": {"prefix": "/flaky/codes"}, "route": {"cluster": "one", "retry_policy": {"retry_on": "retriable-status-codes", "retriable_status_codes": [418]}}},
          {"match": {"prefix": "/flaky/5xxonly"}, "route": {"cluster": "one", "retry_policy": {"retry_on": "5xx"}}},
          {"match": {"prefix": "/flaky/"}, "route": {"cluster": "one", "retry_policy": {"retry_on": "5xx"}}},
          {"match": {"prefix": "/noretry/"}, "route": {"cluster": "one", "prefix_rewrite": "/flaky/"}},
          {"match": {"prefix": "/always/"}, "route": {"cluster": "one", "retry_policy": {"retry_on": "gateway-error", "num_retries": 2}}},
          {"match": {"prefix": "/reset/"}, "route": {"cluster": "one", "retry_policy": {"retry_on": "reset"}}},
          {"match": {"prefix": "/slowfirst/"}, "route": {"cluster": "one", "timeout": "5s", "retry_policy": {"retry_on": "5xx", "per_try_timeout": "0.3s"}}},
          {"match": {"prefix": "/slow"}, "route": {"cluster": "one", "timeout": "5s", "retry_policy": {"retry_on": "5xx", "num_retries": 1, "per_try_timeout": "0.3s"}}},
          {"match": {"prefix": "/pair"}, "route": {"cluster": "pair", "retry_policy": {"retry_on": "connect-failure", "num_retries": 3, $PH}}},
          {"match": {"prefix": "/rp"}, "route": {"cluster": "ringpair", "hash_policy": [{"header": {"header_name": "x-user"}}],
             "retry_policy": {"retry_on": "connect-failure", "num_retries": 2, $PH}}},
          {"match": {"prefix": "/rnp"}, "route": {"cluster": "ringpair", "hash_policy": [{"header": {"header_name": "x-user"}}],
             "retry_policy": {"retry_on": "connect-failure", "num_retries": 2}}},
          {"match": {"prefix": "/busy/"}, "route": {"cluster": "one", "retry_policy": {"retry_on": "retriable-headers",
             "retriable_headers": [{"name": "x-upstream-busy", "present_match": true}]}}},
          {"match": {"prefix": "/busy503/"}, "route": {"cluster": "one", "prefix_rewrite": "/flaky/", "retry_policy": {
             "retry_on": "retriable-headers", "retriable_headers": [{"name": "x-upstream-busy", "present_match": true}]}}},
          {"match": {"prefix": "/rbpair"}, "route": {"cluster": "pair", "retry_policy": {"retry_on": "reset-before-request",
             "num_retries": 3, $PH}}},
          {"match": {"prefix": "/rbreset/"}, "route": {"cluster": "one", "prefix_rewrite": "/reset/",
             "retry_policy": {"retry_on": "reset-before-request"}}},
          {"match": {"prefix": "/hdr/"}, "route": {"cluster": "one", "prefix_rewrite": "/flaky/"}},
          {"match": {"prefix": "/hdra/"}, "route": {"cluster": "one", "prefix_rewrite": "/always/"}},
          {"match": {"prefix": "/hdrb/"}, "route": {"cluster": "one", "prefix_rewrite": "/busy/"}},
          {"match": {"prefix": "/hdrs/"}, "route": {"cluster": "one", "prefix_rewrite": "/slow/"}},
          {"match": {"prefix": "/hdrsf/"}, "route": {"cluster": "one", "prefix_rewrite": "/slowfirst/"}},
          {"match": {"prefix": "/hh"}, "route": {"cluster": "ring3", "hash_policy": [{"header": {"header_name": "x-user"}}]}},
          {"match": {"prefix": "/hm"}, "route": {"cluster": "mag3", "hash_policy": [{"header": {"header_name": "x-user"}}]}},
          {"match": {"prefix": "/hc"}, "route": {"cluster": "ring3", "hash_policy": [{"cookie": {"name": "sess", "ttl": "0s"}}]}},
          {"match": {"prefix": "/hq"}, "route": {"cluster": "ring3", "hash_policy": [{"query_parameter": {"name": "u"}}]}},
          {"match": {"prefix": "/hs"}, "route": {"cluster": "ring3", "hash_policy": [{"connection_properties": {"source_ip": true}}]}},
          {"match": {"prefix": "/ht"}, "route": {"cluster": "ring3", "hash_policy": [
             {"header": {"header_name": "x-user"}, "terminal": true}, {"header": {"header_name": "x-other"}}]}}
        ]}]}}}]}]},
   {"name": "fault", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $FP}},
    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
      "@type": "$HCM_TYPE", "stat_prefix": "flt",
      "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": "$TMP/access2.log"}}],
      "http_filters": [{"name": "envoy.filters.http.fault", "typed_config": {"@type": "$FAULT_TYPE",
          "abort": {"http_status": 418, "percentage": {"numerator": 5000, "denominator": "TEN_THOUSAND"}}}}, $ROUTER],
      "route_config": {"name": "f", "virtual_hosts": [
        {"name": "all", "domains": ["*"], "routes": [
          {"match": {"prefix": "/f/abort"}, "route": {"cluster": "one"}, "typed_per_filter_config": {"envoy.filters.http.fault": {
             "@type": "$FAULT_TYPE", "abort": {"http_status": 503, "percentage": {"numerator": 100}}}}},
          {"match": {"prefix": "/f/delay"}, "route": {"cluster": "one"}, "typed_per_filter_config": {"envoy.filters.http.fault": {
             "@type": "$FAULT_TYPE", "delay": {"fixed_delay": "0.2s", "percentage": {"numerator": 100}}}}},
          {"match": {"prefix": "/f/none"}, "route": {"cluster": "one"}, "typed_per_filter_config": {"envoy.filters.http.fault": {
             "@type": "$FAULT_TYPE"}}},
          {"match": {"prefix": "/f/wc"}, "route": {"weighted_clusters": {"clusters": [
            {"name": "one", "weight": 100, "typed_per_filter_config": {"envoy.filters.http.fault": {
               "@type": "$FAULT_TYPE", "abort": {"http_status": 429, "percentage": {"numerator": 100}}}}},
            {"name": "one", "weight": 0}]}},
           "typed_per_filter_config": {"envoy.filters.http.fault": {"@type": "$FAULT_TYPE"}}},
          {"match": {"prefix": "/f/"}, "route": {"cluster": "one"}}
        ]}]}}}]}]}]}}
EOF
jq -e . "$TMP/retry.json" >/dev/null || _t_fail "bootstrap" "invalid JSON"
start_skiff -c retry.json --concurrency 2
if ! wait_admin "$ADMIN"; then
	_t_fail "startup" "admin never answered; log: $(tail -n 20 "$SKIFF_LOG")"
	summary
	exit 1
fi
U="http://127.0.0.1:$LP"

# ---------------------------------------------------------------- retry on a 503
req "$U/flaky/k1"
check_eq "5xx: the first try's 503 is retried, the client sees 200" "$CODE" 200
check_json "5xx: the second request answered" "$BODY" '.n == 2'
check_eq "5xx: the upstream saw two requests" "$(recs "$U1" /flaky/k1)" 2
check_stat cluster.one.upstream_rq_retry 1
check_stat cluster.one.upstream_rq_retry_success 1
check_stat cluster.one.upstream_rq_503 1
check_stat cluster.one.upstream_rq_200 1

req "$U/noretry/k1b"
check_eq "no retry_policy: the 503 goes to the client" "$CODE" 503
check_stat cluster.one.upstream_rq_retry 1

req "$U/flaky/codes1?s=418"
check_eq "retriable-status-codes [418]: retried, 200" "$CODE" 200
req "$U/flaky/5xxonly1?s=418"
check_eq "5xx does not retry a 418" "$CODE" 418
check_eq "... sent once" "$(recs "$U1" /flaky/5xxonly1)" 1
req "$U/flaky/no5xx1"
check_eq "connect-failure does not retry a 503" "$CODE" 503

# ---------------------------------------------------------------- exhausted
req "$U/always/k2"
check_eq "gateway-error, num_retries 2, always 503: the client sees 503" "$CODE" 503
check_eq "... after three tries" "$(recs "$U1" /always/k2)" 3
check_stat cluster.one.upstream_rq_retry_limit_exceeded 1
sleep 0.3
check_match "access log: retries exhausted is URX" "$(cat "$TMP/access.log")" "\"GET /always/k2 HTTP/1.1\" 503 URX "

# ---------------------------------------------------------------- reset, per-try timeout
req "$U/reset/k3"
check_eq "reset: the upstream closed without answering; retried, 200" "$CODE" 200
check_eq "... two tries" "$(recs "$U1" /reset/k3)" 2

T0=$(date +%s%N)
req "$U/slowfirst/k4"
MS=$((($(date +%s%N) - T0) / 1000000))
check_eq "per_try_timeout 0.3 s: the slow first try is abandoned, the retry answers 200" "$CODE" 200
check_json "... from the second request" "$BODY" '.n == 2'
check_range "... well before the slow try would have ended (ms)" "$MS" 250 950
check_stat cluster.one.upstream_rq_per_try_timeout 1
req "$U/slow/k5"
check_eq "per_try_timeout on every try: 504" "$CODE" 504
sleep 0.3
check_match "access log: the last try timed out: 504 UT" "$(cat "$TMP/access.log")" "\"GET /slow/k5 HTTP/1.1\" 504 UT"

# ---------------------------------------------------------------- bodies
req -X POST --data-binary 'small=body' "$U/flaky/k6"
check_eq "POST with a small body: retried, 200" "$CODE" 200
check_json "... the body replayed intact" "$BODY" '.body == "small=body" and .n == 2'
head -c 100000 /dev/zero | tr '\0' 'b' >"$TMP/big"
BEFORE=$(stat cluster.one.upstream_rq_retry)
req -X POST --data-binary @"$TMP/big" "$U/flaky/k7"
check_eq "POST over the 32 KiB buffer limit: not retried, the client sees 503" "$CODE" 503
check_eq "... sent once" "$(recs "$U1" /flaky/k7)" 1
check_stat cluster.one.upstream_rq_retry "$BEFORE"

# ---------------------------------------------------------------- circuit breaker
req "$U/flaky/nocb1"
check_eq "max_retries 0: no retry, 503" "$CODE" 503
check_stat cluster.nocb.upstream_rq_retry_overflow 1

# ---------------------------------------------------------------- connect failure, previous_hosts
OK=0
for i in $(seq 40); do
	c=$(curl -s -o /dev/null -w '%{http_code}' "$U/pair$i")
	[ "$c" == 200 ] && OK=$((OK + 1))
done
check_eq "connect-failure over {live, dead}: all 40 requests succeed" "$OK" 40
FAILS=$(stat cluster.pair.upstream_cx_connect_fail)
RETRIES=$(stat cluster.pair.upstream_rq_retry)
check_range "... the dead host was tried (connect failures)" "$FAILS" 1 40
check_eq "... each connect failure retried once, never to the dead host again" "$RETRIES" "$FAILS"
check_stat cluster.pair.upstream_rq_retry_success "$FAILS"

# RING_HASH over {live, dead} hashed on x-user: a user whose host is the dead one
DEADUSER=""
for i in $(seq 0 40); do
	c=$(curl -s -o /dev/null -w '%{http_code}' -H "x-user: user$i" "$U/rnp")
	if [ "$c" == 503 ]; then DEADUSER=user$i; break; fi
done
if [ -n "$DEADUSER" ]; then
	_t_ok "ring hash without previous_hosts: a user hashed to the dead host gets 503 after its retries ($DEADUSER)"
	sleep 0.3
	check_match "... UF,URX in the access log" "$(cat "$TMP/access.log")" "\"GET /rnp HTTP/1.1\" 503 UF,URX "
	B=$(stat cluster.ringpair.upstream_cx_connect_fail)
	req -H "x-user: $DEADUSER" "$U/rp"
	check_eq "ring hash with previous_hosts: the same user's retry avoids the dead host: 200" "$CODE" 200
	check_eq "... exactly one connect failure (the first try)" "$(stat cluster.ringpair.upstream_cx_connect_fail)" $((B + 1))
else
	_t_fail "ring hash: some user hashes to the dead host" "none of 41"
fi

# ---------------------------------------------------------------- retriable-headers, reset-before-request
req "$U/busy/b1"
check_eq "retriable-headers: a 503 carrying x-upstream-busy is retried, 200" "$CODE" 200
check_eq "... two tries" "$(recs "$U1" /busy/b1)" 2
req "$U/busy503/b2"
check_eq "retriable-headers: a 503 without the header is not retried" "$CODE:$(recs "$U1" /flaky/b2)" "503:1"
B=$(stat cluster.pair.upstream_cx_connect_fail)
R=$(stat cluster.pair.upstream_rq_retry)
OK=0
for i in $(seq 30); do
	c=$(curl -s -o /dev/null -w '%{http_code}' "$U/rbpair$i")
	[ "$c" == 200 ] && OK=$((OK + 1))
done
check_eq "reset-before-request: connect failures (nothing sent) are retried: 30 of 30 succeed" "$OK" 30
FAILS=$(($(stat cluster.pair.upstream_cx_connect_fail) - B))
check_range "... the dead host was tried" "$FAILS" 1 30
check_eq "... each connect failure retried" "$(($(stat cluster.pair.upstream_rq_retry) - R))" "$FAILS"
req -X POST --data-binary 'x=1' "$U/rbreset/r1"
check_eq "reset-before-request: a reset after the request was sent is not retried: 503" "$CODE" 503
check_eq "... one try" "$(recs "$U1" /reset/r1)" 1
sleep 0.3
check_match "... UC in the access log" "$(cat "$TMP/access.log")" "\"POST /rbreset/r1 HTTP/1.1\" 503 UC "

# ---------------------------------------------------------------- x-envoy-* request headers
INT=(-H 'x-forwarded-for: 10.0.0.5')
req -H 'x-envoy-retry-on: 5xx' "$U/hdr/e1"
check_eq "x-envoy-retry-on from an external request (no x-forwarded-for): ignored, 503" "$CODE:$(recs "$U1" /flaky/e1)" "503:1"
check_json "... and stripped: the upstream saw no x-envoy-* control header" "$BODY" \
	'.env | del(.["x-envoy-original-path"]) == {}'
req -H 'x-forwarded-for: 8.8.8.8' -H 'x-envoy-retry-on: 5xx' "$U/hdr/e2"
check_eq "... from a single public x-forwarded-for address: ignored" "$CODE:$(recs "$U1" /flaky/e2)" "503:1"
req -H 'x-forwarded-for: 10.0.0.5, 10.0.0.6' -H 'x-envoy-retry-on: 5xx' "$U/hdr/e3"
check_eq "... from two x-forwarded-for addresses: ignored" "$CODE:$(recs "$U1" /flaky/e3)" "503:1"
req "${INT[@]}" -H 'x-envoy-retry-on: 5xx' "$U/hdr/i1"
check_eq "x-envoy-retry-on: 5xx from an internal request: retried, 200" "$CODE" 200
check_json "... the retry answered; x-envoy-retry-on consumed, x-envoy-internal set" "$BODY" \
	'.n == 2 and (.env | del(.["x-envoy-original-path"])) == {"x-envoy-internal": "true"}'
req "${INT[@]}" -H 'x-envoy-retry-on: retriable-status-codes' -H 'x-envoy-retriable-status-codes: 429, 418' "$U/hdr/i2?s=418"
check_eq "x-envoy-retriable-status-codes 418: retried, 200" "$CODE:$(recs "$U1" /flaky/i2)" "200:2"
req "${INT[@]}" -H 'x-envoy-retry-on: retriable-status-codes' "$U/hdr/i3?s=418"
check_eq "... without it, retriable-status-codes has no code: 418" "$CODE" 418
req "${INT[@]}" -H 'x-envoy-retry-on: retriable-headers' -H 'x-envoy-retriable-header-names: x-other,x-upstream-busy' "$U/hdrb/i4"
check_eq "x-envoy-retriable-header-names: the busy 503 retried, 200" "$CODE:$(recs "$U1" /busy/i4)" "200:2"
req "${INT[@]}" -H 'x-envoy-retry-on: 5xx' -H 'x-envoy-max-retries: 2' "$U/hdra/i5"
check_eq "x-envoy-max-retries 2: three tries, then 503" "$CODE:$(recs "$U1" /always/i5)" "503:3"
sleep 0.3
check_match "... URX in the access log" "$(cat "$TMP/access.log")" "\"GET /hdra/i5 HTTP/1.1\" 503 URX "
req "${INT[@]}" -H 'x-envoy-max-retries: 3' "$U/hdra/i6"
check_eq "x-envoy-max-retries without any retry_on: no retry" "$CODE:$(recs "$U1" /always/i6)" "503:1"
T0=$(date +%s%N)
req "${INT[@]}" -H 'x-envoy-upstream-rq-timeout-ms: 300' "$U/hdrs/i7"
MS=$((($(date +%s%N) - T0) / 1000000))
check_eq "x-envoy-upstream-rq-timeout-ms 300: 504 before the 1 s upstream answers" "$CODE:$BODY" "504:upstream request timeout"
check_range "... after ~300 ms" "$MS" 250 900
T0=$(date +%s%N)
req -H 'x-envoy-upstream-rq-timeout-ms: 300' "$U/hdrs/e4"
MS=$((($(date +%s%N) - T0) / 1000000))
check_eq "... from an external request: ignored, the upstream's 200" "$CODE" 200
check_range "... after the full second" "$MS" 950 3000
check_json "... and stripped" "$BODY" '.env | del(.["x-envoy-original-path"]) == {}'
T0=$(date +%s%N)
req "${INT[@]}" -H 'x-envoy-retry-on: 5xx' -H 'x-envoy-upstream-rq-per-try-timeout-ms: 300' "$U/hdrsf/i8"
MS=$((($(date +%s%N) - T0) / 1000000))
check_eq "x-envoy-upstream-rq-per-try-timeout-ms 300: the slow first try abandoned, the retry answers" "$CODE" 200
check_json "... from the second request, no x-envoy-* control header forwarded" "$BODY" \
	'.n == 2 and (.env | del(.["x-envoy-original-path"])) == {"x-envoy-internal": "true"}'
check_range "... well before the slow try would have ended (ms)" "$MS" 250 950
req -H 'x-envoy-internal: true' -H 'x-envoy-force-trace: 1' -H 'x-envoy-other: kept' "$U/hdr/e5"
check_json "external: a client's x-envoy-internal and x-envoy-force-trace are dropped, others kept" "$BODY" \
	'.env | del(.["x-envoy-original-path"]) == {"x-envoy-other": "kept"}'

# ---------------------------------------------------------------- hash policies
hosts_of() { # PATH CURL-ARGS...: the set of upstream names over 8 requests
	local p=$1 i
	shift
	for i in 1 2 3 4 5 6 7 8; do curl -s "$@" "$U$p" | jq -r .name; done | sort -u | tr '\n' ' '
}
for route in hh hm; do
	STICKY=1 ALL=""
	for i in $(seq 0 14); do
		h=$(hosts_of "/$route" -H "x-user: u$i")
		[ "$(wc -w <<<"$h")" -eq 1 ] || STICKY=0
		ALL="$ALL $h"
	done
	check_eq "$route: the same x-user always lands on one host (15 users x 8)" "$STICKY" 1
	check_range "$route: different users spread (distinct hosts)" "$(tr ' ' '\n' <<<"$ALL" | sort -u | grep -c .)" 2 3
done
S=1 ALL=""
for i in $(seq 0 9); do
	h=$(hosts_of /hc -H "cookie: a=b; sess=s$i")
	[ "$(wc -w <<<"$h")" -eq 1 ] || S=0
	ALL="$ALL $h"
done
check_eq "cookie: the same cookie value is sticky" "$S" 1
check_range "cookie: values spread" "$(tr ' ' '\n' <<<"$ALL" | sort -u | grep -c .)" 2 3
S=1 ALL=""
for i in $(seq 0 9); do
	h=$(hosts_of "/hq?x=1&u=q$i")
	[ "$(wc -w <<<"$h")" -eq 1 ] || S=0
	ALL="$ALL $h"
done
check_eq "query_parameter: the same value is sticky" "$S" 1
check_range "query_parameter: values spread" "$(tr ' ' '\n' <<<"$ALL" | sort -u | grep -c .)" 2 3
check_eq "source_ip: one client address, one host" "$(wc -w <<<"$(hosts_of /hs)")" 1
check_range "no cookie: no hash, requests spread" "$(wc -w <<<"$(for i in 1 2 3; do hosts_of /hc; done | tr ' ' '\n' | sort -u | tr '\n' ' ')")" 2 3
S=1
for i in $(seq 0 5); do
	h=$(for j in 1 2 3 4 5 6; do curl -s -H "x-user: t$i" -H "x-other: o$j" "$U/ht" | jq -r .name; done | sort -u | wc -l)
	[ "$h" -eq 1 ] || S=0
done
check_eq "terminal: a later policy's header does not change the host" "$S" 1

# ---------------------------------------------------------------- fault filter
F="http://127.0.0.1:$FP"
req "$F/f/abort"
check_eq "fault: per-route abort 100% -> 503" "$CODE" 503
check_eq "... the body is Envoy's" "$BODY" "fault filter abort"
check_eq "... never reaches the upstream" "$(recs "$U1" /f/abort)" 0
check_stat http.flt.fault.aborts_injected 1
T0=$(date +%s%N)
req "$F/f/delay"
MS=$((($(date +%s%N) - T0) / 1000000))
check_eq "fault: per-route delay 100% of 200 ms: then forwarded, 200" "$CODE" 200
check_range "... took at least 200 ms (ms)" "$MS" 200 2000
check_stat http.flt.fault.delays_injected 1
T0=$(date +%s%N)
req -X POST --data-binary 'held=body' "$F/f/delay"
MS=$((($(date +%s%N) - T0) / 1000000))
check_json "fault: a delayed POST's body arrives intact" "$BODY" '.body == "held=body"'
check_range "... after the delay (ms)" "$MS" 200 2000
req -H 'x-envoy-fault-abort-request: 500' -H 'x-envoy-fault-delay-request: 1000' "$F/f/none"
check_eq "fault: an empty per-route config turns faults off; x-envoy-fault-* headers ignored" "$CODE" 200
req "$F/f/wc"
check_eq "fault: a weighted cluster's own fault config wins over its route's" "$CODE" 429
check_eq "... and the request never reaches the upstream" "$(recs "$U1" /f/wc)" 0
cat >"$TMP/count.py" <<'PY'
import http.client, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
counts = {}
for i in range(n):
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    counts[r.status] = counts.get(r.status, 0) + 1
print(counts.get(418, 0), counts.get(200, 0))
PY
read -r A OKS <<<"$("$PYTHON3" "$TMP/count.py" "$FP" /f/half 400)"
check_range "fault: filter-level abort 50% over 400 requests: 418s within the 99.9% binomial bound" "$A" 167 233
check_eq "... the rest answered 200" "$((A + OKS))" 400
check_stat http.flt.fault.aborts_injected $((A + 2))
sleep 0.3
check_match "access log: an injected abort is FI" "$(cat "$TMP/access2.log")" "\"GET /f/abort HTTP/1.1\" 503 FI "
check_match "access log: an injected delay is DI" "$(cat "$TMP/access2.log")" "\"GET /f/delay HTTP/1.1\" 200 DI "

kill -TERM "$SKIFF_PID" 2>/dev/null
if wait_exit "$SKIFF_PID" 3; then
	check_eq "skiff exits 0 on SIGTERM" "$EXIT_CODE" 0
else
	kill -KILL "$SKIFF_PID" 2>/dev/null
	_t_fail "skiff exits within 3 s of SIGTERM" "still running"
fi
check_not_contains "no sanitizer report" "$(cat "$SKIFF_LOG")" "Sanitizer"
summary
