#!/usr/bin/env bash
# HTTP/1.1 to upstreams over (mutual) TLS, as Istio's outbound path to tlsMode-istio
# endpoints: an HCM listener -> clusters with an UpstreamTlsContext (static certificate files,
# trusted_ca, an exact SPIFFE SAN, SNI) -> a python HTTPS server requiring a client
# certificate. Certificates are issued at test time by tests/tls/ca.sh into $TMP.
#   - GET and POST (small and 1 MiB bodies, echoed back) go through;
#   - keep-alive reuses the one TLS connection (upstream_cx_total stays 1);
#   - an upstream closing a pooled TLS connection costs nothing (the next request goes on a
#     new one);
#   - a wrong expected SAN gives 503 UF and ssl.fail_verify_san; a server certificate of a
#     foreign CA gives 503 and ssl.fail_verify_error, retried per the route's retry policy;
#   - HTTP/2 upstreams over TLS (explicit http2_protocol_options, nghttpd requiring a client
#     certificate and ALPN h2): GET and a 1 MiB POST echoed back, sequential and concurrent
#     requests on one TLS connection; ALPN "h2" offered when the context has no
#     alpn_protocols, the context's own list when it has one (http/1.1 only: no HTTP/2, 503);
#     a wrong SAN gives 503 and ssl.fail_verify_san, retried on connect-failure;
#   - HTTP/2 from downstreams over TLS (a chain with a DownstreamTlsContext, ALPN h2 and
#     http/1.1, client certificate required): curl --http2 gets HTTP/2, bodies both ways
#     (1 MiB), several requests on one TLS connection. Skipped while listeners refuse TLS on
#     HCM chains (skiff's config:debug log says so).
# Loopback only; every wait is bounded (timeouts on every socket and process).
. "$(dirname "$0")/lib.sh"

require_tools curl jq python3 openssl nghttpd || {
	summary
	exit 1
}
[ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3

_TLS_PIDS=()
_tls_cleanup() {
	local rc=$? pid
	for pid in "${_TLS_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	(exit "$rc")
	_t_cleanup
}
trap _tls_cleanup EXIT

PKI=$TMP/pki
TD=spiffe://cluster.local
if ! {
	bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" ca &&
		bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" ca other &&
		bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" workload server default server &&
		bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" workload client default client &&
		bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" workload ingress default ingress --ip 127.0.0.1 &&
		bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" workload foreign default server --ca other
} >"$TMP/ca.log" 2>&1; then
	_t_fail "test CA" "$(tail -n 5 "$TMP/ca.log")"
	summary
	exit 1
fi

# ---------------------------------------------------------------------------------------
# the HTTPS upstream (one thread per connection, handshake in that thread) and the client

cat >"$TMP/https.py" <<'PY'
import http.client, http.server, json, os, socket, socketserver, ssl, sys, threading, time

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def _reply(self, body):
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.send_header("x-conn", "%s:%d" % self.client_address)
        self.send_header("x-sni", getattr(self.request, "sni", "") or "")
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self._reply(("GET %s" % self.path).encode())
        if self.path.endswith("/close"):
            self.close_connection = True  # no close_notify: an abrupt close of a pooled one
    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        body = b""
        while len(body) < n:
            d = self.rfile.read(n - len(body))
            if not d:
                break
            body += d
        self._reply(body)

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    def finish_request(self, request, client_address):
        request.settimeout(10)
        names = {}
        def sni_cb(s, name, c):
            names["sni"] = name
        self.ctx.sni_callback = sni_cb
        try:
            t = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        t.sni = names.get("sni")
        self.RequestHandlerClass(t, client_address, self)

def serve(ready, port, cert, key, ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    s = S(("127.0.0.1", int(port)), H)
    s.ctx = ctx
    threading.Thread(target=s.serve_forever, daemon=True).start()
    open(ready, "w").close()
    parent, deadline = os.getppid(), time.time() + 120
    while os.getppid() == parent and time.time() < deadline:
        time.sleep(0.2)

def client(port, script):
    """Requests on one connection: each 'METHOD PATH [BODY-BYTES]' line prints
    'status conn-id body-or-verdict'."""
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    out = []
    for line in script.split(";"):
        parts = line.split()
        method, path = parts[0], parts[1]
        body = None
        if len(parts) > 2:
            n = int(parts[2])
            body = (b"0123456789abcdef" * (n // 16 + 1))[:n]
        try:
            c.request(method, path, body=body)
            r = c.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            out.append("ERROR %s" % type(e).__name__)
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
            continue
        if body is not None and len(body) > 64:
            shown = "ECHO-OK" if data == body else "ECHO-BAD %d" % len(data)
        else:
            shown = data.decode(errors="replace")
        out.append("%d %s %s %s" % (r.status, r.getheader("x-conn", "-"), r.getheader("x-sni", "-") or "-", shown))
    c.close()
    print("\n".join(out))

if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(*sys.argv[2:7])
    else:
        client(sys.argv[2], sys.argv[3])
PY

start_https() { # PORT CERT-NAME
	local ready="$TMP/https.$1.ready" i
	"$PYTHON3" "$TMP/https.py" serve "$ready" "$1" "$PKI/$2-chain.crt" "$PKI/$2.key" "$PKI/root.crt" \
		>"$TMP/https.$1.log" 2>&1 &
	_TLS_PIDS+=($!)
	for i in $(seq 200); do
		[ -e "$ready" ] && return 0
		sleep 0.03
	done
	_t_fail "https upstream on $1" "not listening after 6 s: $(cat "$TMP/https.$1.log")"
	return 1
}
hc() { timeout 30 "$PYTHON3" "$TMP/https.py" client "$@"; } # PORT "GET /a;POST /b 10;..."

# ---------------------------------------------------------------------------------------
# skiff

UP_CTX=type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
HCM_TYPE=type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
ROUTER='{"name":"envoy.filters.http.router","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}'

upstream_ts() { # SAN SNI
	echo "{\"name\":\"envoy.transport_sockets.tls\",\"typed_config\":{\"@type\":\"$UP_CTX\",\"sni\":\"$2\",
  \"common_tls_context\":{\"tls_certificates\":[{\"certificate_chain\":{\"filename\":\"$PKI/client-chain.crt\"},
    \"private_key\":{\"filename\":\"$PKI/client.key\"}}],
  \"validation_context\":{\"trusted_ca\":{\"filename\":\"$PKI/root.crt\"},
    \"match_subject_alt_names\":[{\"exact\":\"$1\"}]}}}}"
}
cluster_ts() { # NAME PORT SAN
	echo "{\"name\":\"$1\",\"type\":\"STATIC\",\"connect_timeout\":\"2s\",
  \"transport_socket\":$(upstream_ts "$3" "outbound_.$2_._.$1.default.svc.cluster.local"),
  \"load_assignment\":{\"cluster_name\":\"$1\",\"endpoints\":[{\"lb_endpoints\":[
  {\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$2}}}}]}]}}"
}
# an HTTP/2 cluster over TLS; ALPN: a JSON list for common_tls_context.alpn_protocols
h2_cluster_ts() { # NAME PORT SAN [ALPN]
	cluster_ts "$1" "$2" "$3" | jq -c --argjson alpn "${4:-null}" '.typed_extension_protocol_options = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions":
	  {"@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
	   "explicit_http_config": {"http2_protocol_options": {}}}} |
	  if $alpn != null then .transport_socket.typed_config.common_tls_context.alpn_protocols = $alpn else . end'
}
route() { # PREFIX CLUSTER [EXTRA]
	echo "{\"match\":{\"prefix\":\"$1\"},\"route\":{\"cluster\":\"$2\"${3:+,$3}}}"
}

ports ADMIN LP LT P_GOOD P_FOREIGN P_H2 || {
	summary
	exit 1
}
start_https "$P_GOOD" server || {
	summary
	exit 1
}
start_https "$P_FOREIGN" foreign || {
	summary
	exit 1
}
# the HTTP/2 upstream: nghttpd over TLS, asking for a client certificate (-V: refuses a
# handshake without one), ALPN h2 only, echoing POST bodies; files named after the routes
mkdir -p "$TMP/www/h2" "$TMP/www/h2alpn" "$TMP/www/h2http1"
printf 'hello over h2+tls' >"$TMP/www/h2/index.html"
printf 'alpn from the context' >"$TMP/www/h2alpn/index.html"
printf 'never served' >"$TMP/www/h2http1/index.html"
timeout 180 nghttpd -V --echo-upload -a 127.0.0.1 -d "$TMP/www" "$P_H2" "$PKI/server.key" "$PKI/server-chain.crt" \
	>"$TMP/nghttpd.log" 2>&1 &
_TLS_PIDS+=($!)
for i in $(seq 200); do
	(exec 3<>"/dev/tcp/127.0.0.1/$P_H2") 2>/dev/null && break
	sleep 0.03
done
SAN="$TD/ns/default/sa/server"
cat >"$TMP/skiff.json" <<EOF
{"node": {"id": "http-tls", "cluster": "t"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $ADMIN}}},
 "static_resources": {
  "clusters": [$(cluster_ts good "$P_GOOD" "$SAN"), $(cluster_ts badsan "$P_GOOD" "$TD/ns/default/sa/someone-else"),
               $(cluster_ts foreign "$P_FOREIGN" "$SAN"), $(cluster_ts foreignr "$P_FOREIGN" "$SAN"),
               $(h2_cluster_ts h2 "$P_H2" "$SAN"), $(h2_cluster_ts h2alpn "$P_H2" "$SAN" '["h2","http/1.1"]'),
               $(h2_cluster_ts h2http1 "$P_H2" "$SAN" '["http/1.1"]'),
               $(h2_cluster_ts h2badsan "$P_H2" "$TD/ns/default/sa/someone-else"),
               $(h2_cluster_ts h2badsanr "$P_H2" "$TD/ns/default/sa/someone-else")],
  "listeners": [
   {"name": "main", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $LP}},
    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
      "@type": "$HCM_TYPE", "stat_prefix": "ing",
      "route_config": {"name": "r", "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        $(route /good good), $(route /badsan badsan), $(route /foreign-retry foreignr '"retry_policy":{"retry_on":"connect-failure","num_retries":2}'),
        $(route /foreign foreign), $(route /h2alpn/ h2alpn), $(route /h2http1/ h2http1),
        $(route /h2badsan-retry/ h2badsanr '"retry_policy":{"retry_on":"connect-failure","num_retries":2}'),
        $(route /h2badsan/ h2badsan), $(route /h2/ h2)]}]},
      "http_filters": [$ROUTER]}}]}]},
   {"name": "tlsin", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $LT}},
    "filter_chains": [{"transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
      "require_client_certificate": true,
      "common_tls_context": {"alpn_protocols": ["h2", "http/1.1"],
        "tls_certificates": [{"certificate_chain": {"filename": "$PKI/ingress-chain.crt"},
                              "private_key": {"filename": "$PKI/ingress.key"}}],
        "validation_context": {"trusted_ca": {"filename": "$PKI/root.crt"}}}}},
     "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
      "@type": "$HCM_TYPE", "stat_prefix": "tlsin",
      "route_config": {"name": "rt", "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        $(route /good good), $(route /h2/ h2)]}]},
      "http_filters": [$ROUTER]}}]}]}]}}
EOF
if ! jq -e . "$TMP/skiff.json" >/dev/null; then
	_t_fail "bootstrap" "invalid JSON: $(head -c 600 "$TMP/skiff.json")"
	summary
	exit 1
fi
# config:debug says whether the listener serves TLS on HCM chains; upstream:debug logs the
# reasons of failed upstream handshakes
start_skiff -c skiff.json --concurrency 1 --component-log-level config:debug,upstream:debug
if ! wait_admin "$ADMIN"; then
	_t_fail "startup" "admin never answered; log: $(tail -n 20 "$SKIFF_LOG")"
	summary
	exit 1
fi

# ---- GET and POST over one client connection: one TLS connection upstream ----
out=$(hc "$LP" "GET /good/a;POST /good/b 11;GET /good/c;POST /good/big 1048576;GET /good/d")
mapfile -t L <<<"$out"
check_match "GET through TLS (${L[0]:-})" "${L[0]:-}" '^200 127\.0\.0\.1:[0-9]+ outbound_\.[0-9]+_\._\.good\.default\.svc\.cluster\.local GET /good/a$'
check_match "POST with a body through TLS (${L[1]:-})" "${L[1]:-}" '^200 [^ ]+ [^ ]+ 0123456789a$'
check_match "a second GET (${L[2]:-})" "${L[2]:-}" '^200 [^ ]+ [^ ]+ GET /good/c$'
check_match "a 1 MiB POST echoed back whole (${L[3]:-})" "${L[3]:-}" '^200 [^ ]+ [^ ]+ ECHO-OK$'
check_match "a GET after the big one (${L[4]:-})" "${L[4]:-}" '^200 [^ ]+ [^ ]+ GET /good/d$'
conns=$(printf '%s\n' "$out" | awk '{print $2}' | sort -u | wc -l)
check_eq "the upstream saw one connection for all five requests" "$conns" 1
check_stat cluster.good.upstream_cx_total 1
check_stat cluster.good.ssl.handshake 1
check_stat cluster.good.upstream_rq_200 5
check_stat cluster.good.upstream_cx_connect_fail 0

# ---- a second client connection takes the pooled TLS connection ----
out=$(hc "$LP" "GET /good/again")
check_match "a new client connection gets the pooled one ($out)" "$out" '^200 [^ ]+ [^ ]+ GET /good/again$'
check_stat cluster.good.upstream_cx_total 1
check_stat cluster.good.ssl.handshake 1

# ---- the upstream closes a pooled TLS connection (no close_notify) ----
out=$(hc "$LP" "GET /good/close")
check_match "a response before the upstream closes ($out)" "$out" '^200 [^ ]+ [^ ]+ GET /good/close$'
check_stat cluster.good.upstream_cx_destroy_remote 1
out=$(hc "$LP" "GET /good/after-close;GET /good/after-close2")
check_match "the next requests go on a new TLS connection ($out)" "$(tr '\n' ' ' <<<"$out")" \
	'^200 [^ ]+ [^ ]+ GET /good/after-close 200 [^ ]+ [^ ]+ GET /good/after-close2 $'
check_stat cluster.good.upstream_cx_total 2
check_stat cluster.good.ssl.handshake 2

# ---- verification failures: 503 UF, the ssl.* counter, connect_fail ----
req "http://127.0.0.1:$LP/badsan/x"
check_eq "a wrong expected SAN gives 503" "$CODE" 503
check_contains "the 503 says connection failure" "$BODY" "connection failure"
check_stat cluster.badsan.ssl.fail_verify_san 1
check_stat cluster.badsan.upstream_cx_connect_fail 1
check_stat cluster.badsan.ssl.handshake 0
req "http://127.0.0.1:$LP/foreign/x"
check_eq "a foreign CA's server certificate gives 503" "$CODE" 503
check_stat cluster.foreign.ssl.fail_verify_error 1
check_stat cluster.foreign.upstream_cx_connect_fail 1
req "http://127.0.0.1:$LP/foreign-retry/x"
check_eq "with retry_on connect-failure: 503 after the retries" "$CODE" 503
check_stat cluster.foreignr.ssl.fail_verify_error 3
check_stat cluster.foreignr.upstream_cx_connect_fail 3
check_stat cluster.foreignr.upstream_rq_retry 2

# ---- HTTP/2 upstream over TLS: GET and POST (1 MiB) on one TLS connection ----
out=$(hc "$LP" "GET /h2/index.html;POST /h2/echo 11;GET /h2/index.html;POST /h2/big 1048576;GET /h2/index.html")
mapfile -t L <<<"$out"
check_match "HTTP/2+TLS: a GET (${L[0]:-})" "${L[0]:-}" '^200 - - hello over h2\+tls$'
check_match "HTTP/2+TLS: a POST echoed back (${L[1]:-})" "${L[1]:-}" '^200 - - 0123456789a$'
check_match "HTTP/2+TLS: a second GET (${L[2]:-})" "${L[2]:-}" '^200 - - hello over h2\+tls$'
check_match "HTTP/2+TLS: a 1 MiB POST echoed back whole (${L[3]:-})" "${L[3]:-}" '^200 - - ECHO-OK$'
check_match "HTTP/2+TLS: a GET after the big one (${L[4]:-})" "${L[4]:-}" '^200 - - hello over h2\+tls$'
check_stat cluster.h2.upstream_cx_total 1
check_stat cluster.h2.upstream_cx_http2_total 1
check_stat cluster.h2.ssl.handshake 1
check_stat cluster.h2.upstream_rq_200 5
check_stat cluster.h2.upstream_cx_connect_fail 0

# ---- concurrent requests from four client connections: streams of the one TLS connection ----
# (bodies and -w lines of parallel transfers interleave: only status and size are printed)
out=$(curl -s --max-time 20 --parallel --parallel-immediate --parallel-max 4 -o /dev/null -o /dev/null \
	-o /dev/null -o /dev/null -w '%{http_code} %{size_download}\n' \
	"http://127.0.0.1:$LP/h2/index.html" "http://127.0.0.1:$LP/h2/index.html" \
	"http://127.0.0.1:$LP/h2/index.html" "http://127.0.0.1:$LP/h2/index.html" 2>/dev/null)
check_eq "HTTP/2+TLS: four concurrent requests answered ($(tr '\n' ' ' <<<"$out"))" "$(grep -c '^200 17$' <<<"$out")" 4
check_stat cluster.h2.upstream_cx_total 1
check_stat cluster.h2.ssl.handshake 1
check_stat cluster.h2.upstream_rq_200 9

# ---- ALPN: the context's alpn_protocols when it has some ----
req "http://127.0.0.1:$LP/h2alpn/index.html"
check_eq "HTTP/2+TLS with alpn_protocols [h2, http/1.1]: 200" "$CODE" 200
check_eq "... the body" "$BODY" "alpn from the context"
check_stat cluster.h2alpn.ssl.handshake 1
req "http://127.0.0.1:$LP/h2http1/index.html"
check_eq "HTTP/2+TLS with alpn_protocols [http/1.1] (no h2 offered: nghttpd closes): 503" "$CODE" 503
check_stat cluster.h2http1.ssl.handshake 1
check_stat cluster.h2http1.upstream_cx_destroy_remote 1

# ---- HTTP/2+TLS verification failures: connect failures, retried ----
req "http://127.0.0.1:$LP/h2badsan/x"
check_eq "HTTP/2+TLS: a wrong expected SAN gives 503" "$CODE" 503
check_contains "the 503 says connection failure" "$BODY" "connection failure"
check_stat cluster.h2badsan.ssl.fail_verify_san 1
check_stat cluster.h2badsan.ssl.handshake 0
check_stat cluster.h2badsan.upstream_cx_connect_fail 1
check_contains "the failed handshake is logged with its reason" "$(cat "$SKIFF_LOG")" \
	"http2 upstream: TLS handshake with 127.0.0.1:$P_H2 (cluster 'h2badsan') failed: "
req "http://127.0.0.1:$LP/h2badsan-retry/x"
check_eq "HTTP/2+TLS with retry_on connect-failure: 503 after the retries" "$CODE" 503
check_stat cluster.h2badsanr.ssl.fail_verify_san 3
check_stat cluster.h2badsanr.upstream_cx_connect_fail 3
check_stat cluster.h2badsanr.upstream_rq_retry 2
out=$(hc "$LP" "GET /h2/index.html")
check_match "the HTTP/2+TLS cluster still serves on its connection ($out)" "$out" '^200 - - hello over h2\+tls$'
check_stat cluster.h2.upstream_cx_total 1

# ---- HTTP/2 downstream over TLS ----
# dtls ARGS...: curl over HTTP/2+TLS to the tlsin listener with the client certificate
dtls() {
	curl -s --max-time 20 --http2 --cacert "$PKI/root.crt" --cert "$PKI/client-chain.crt" --key "$PKI/client.key" "$@"
}
if grep -q "TLS on HTTP chains is not served yet" "$SKIFF_LOG"; then
	skip "HTTP/2 downstream over TLS" "listeners of this build refuse TLS on HCM chains"
else
	out=$(dtls -w '\n%{http_version} %{http_code}' "https://127.0.0.1:$LT/h2/index.html")
	check_eq "curl --http2 over TLS: HTTP/2 negotiated, the body arrived" "$out" "hello over h2+tls
2 200"
	head -c 1048576 /dev/urandom >"$TMP/up.bin"
	want=$(md5sum <"$TMP/up.bin" | cut -d' ' -f1)
	got=$(dtls --data-binary "@$TMP/up.bin" "https://127.0.0.1:$LT/good/upload" | md5sum | cut -d' ' -f1)
	check_eq "HTTP/2+TLS downstream: a 1 MiB upload echoed back whole (HTTPS HTTP/1.1 upstream)" "$got" "$want"
	got=$(dtls --data-binary "@$TMP/up.bin" "https://127.0.0.1:$LT/h2/upload" | md5sum | cut -d' ' -f1)
	check_eq "HTTP/2+TLS downstream: a 1 MiB upload echoed back whole (HTTP/2+TLS upstream)" "$got" "$want"
	hs=$(stat "listener.127.0.0.1_$LT.ssl.handshake")
	out=$(dtls -w ' %{http_version} %{num_connects}\n' "https://127.0.0.1:$LT/h2/index.html" "https://127.0.0.1:$LT/h2/index.html" \
		"https://127.0.0.1:$LT/good/third")
	check_eq "three requests on one HTTP/2+TLS connection" "$out" "hello over h2+tls 2 1
hello over h2+tls 2 0
GET /good/third 2 0"
	check_stat "listener.127.0.0.1_$LT.ssl.handshake" "$((hs + 1))"
	check_stat http.tlsin.downstream_cx_http2_total 4
	check_range "http.tlsin.downstream_cx_rx_bytes_total counts the plaintext (2 MiB of uploads)" \
		"$(stat http.tlsin.downstream_cx_rx_bytes_total)" 2097152 2300000
	check_stat cluster.h2.upstream_cx_total 1
fi

# ---- still serving, nothing went out in clear ----
out=$(hc "$LP" "GET /good/last")
check_match "the good cluster still serves ($out)" "$out" '^200 [^ ]+ [^ ]+ GET /good/last$'
check_not_contains "the upstreams never saw plain HTTP" "$(cat "$TMP"/https.*.log)" "Bad request"
check "skiff is still running" _t_running "$SKIFF_PID"
stop_skiff
check_eq "skiff exits cleanly on SIGTERM" "$EXIT_CODE" 0
check_not_contains "no sanitizer report (leaks, memory errors)" "$(cat "$SKIFF_LOG")" "Sanitizer"
summary
