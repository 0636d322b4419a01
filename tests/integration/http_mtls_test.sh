#!/usr/bin/env bash
# HTTP between two sidecars over mutual TLS, in Istio's shapes, end to end on loopback:
#   client -> skiff A (client sidecar: HCM with istio.alpn, cluster with a tlsMode-istio
#   UpstreamTlsContext: SDS `default` + exact SPIFFE SAN + SDS `ROOTCA`) -> mTLS ->
#   skiff B (server sidecar: virtualInbound with tls_inspector; chains on transport_protocol
#   and Istio's ALPN, DownstreamTlsContext requiring a client certificate, HCM with
#   forward_client_cert_details APPEND_FORWARD) -> app (python, echoes what it received).
# Each sidecar has its own pilot-agent stand-in: the test xDS server serving its SDS secrets
# on a unix socket, certificates issued at test time by tests/tls/ca.sh.
#   1. a request crosses; the app sees Envoy's x-forwarded-client-cert (By, Hash, Subject,
#      URI); each side logs the other's SPIFFE id and TLSv1.3; the client sidecar offered
#      istio-http/1.1 (the inbound chain matched on it); a spoofed XFCC is not forwarded;
#      a mirror goes over mTLS too; h2c to the client sidecar goes on as HTTP/2 over mTLS
#      (istio-h2, no ALPN h2: the server sidecar reads the preface)
#   2. clients straight to the inbound port: HTTP/2 chosen by ALPN h2, HTTP/1.1 by
#      http/1.1, a 1 MiB upload; no client certificate, a foreign CA, an expired one,
#      plaintext to the STRICT port: refused, the app never sees them; PERMISSIVE accepts
#      plaintext; hostile bytes (a ClientHello cut by noise, garbage records after a good
#      handshake) close those connections and nothing else
#   3. rotation under load: `default` of both sides, then ROOTCA to a bundle with a second
#      root, then both workloads re-issued by that root; zero failed requests counted
# Loopback and unix sockets only; every wait is bounded.
. "$(dirname "$0")/lib.sh"

require_tools curl jq python3 openssl || {
	summary
	exit 1
}
[ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3
PYTHON3=${PYTHON3:-python3}

SKIFF_BUILD=${SKIFF_BUILD:-$(cd "$(dirname "$SKIFF_BIN")/.." && pwd)}
SERVER="$SKIFF_BUILD/xds/server/skiff-xds-server"
if [ ! -x "$SERVER" ]; then
	_t_fail "binaries" "$SERVER is not built"
	summary
	exit 1
fi
CA="$SKIFF_SRC/tests/tls/ca.sh"
PKI=$TMP/pki
TD=spiffe://cluster.local

if ! { bash "$CA" "$PKI" ca && bash "$CA" "$PKI" ca root2 && bash "$CA" "$PKI" ca other &&
	bash "$CA" "$PKI" workload client default client --days 30 &&
	bash "$CA" "$PKI" workload server default server --days 30 --dns server.default &&
	bash "$CA" "$PKI" workload server-b default server --days 30 --dns server.default &&
	bash "$CA" "$PKI" workload client2 default client --days 30 --ca root2 &&
	bash "$CA" "$PKI" workload server2 default server --days 30 --ca root2 --dns server.default &&
	bash "$CA" "$PKI" workload foreign default client --ca other &&
	bash "$CA" "$PKI" workload expired default client --expired; } >"$TMP/ca.log" 2>&1; then
	_t_fail "test CA" "$(tail -n 5 "$TMP/ca.log")"
	summary
	exit 1
fi
cat "$PKI/root.crt" "$PKI/root2.crt" >"$PKI/bundle.crt"

# ---------------------------------------------------------------------------------------
# the app and the load client

cat >"$TMP/app.py" <<'PY'
import http.client, http.server, json, os, socketserver, sys, threading, time

COUNT = 0

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def _reply(self, extra=b""):
        global COUNT
        COUNT += 1
        with open(os.environ["APP_COUNT"] + ".tmp", "w") as f:
            f.write(str(COUNT))
        os.rename(os.environ["APP_COUNT"] + ".tmp", os.environ["APP_COUNT"])
        seen = {"path": self.path, "xfcc": self.headers.get_all("x-forwarded-client-cert") or [],
                "chain": self.headers.get("x-chain", ""), "peer": self.headers.get("x-peer", ""),
                "len": len(extra)}
        body = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self._reply()
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

def serve(ready, port):
    s = S(("127.0.0.1", int(port)), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    open(ready, "w").close()
    parent, deadline = os.getppid(), time.time() + 300
    while os.getppid() == parent and time.time() < deadline:
        time.sleep(0.2)

def load(port, stop, out):
    """Requests until the file stop exists (at most 120 s): one keep-alive connection and,
    in turn, new connections. Writes 'ok failed' counts to out, and the first failures."""
    ok, failed, errors = 0, 0, []
    keep = None
    deadline = time.time() + 120
    i = 0
    while not os.path.exists(stop) and time.time() < deadline:
        i += 1
        fresh = i % 3 == 0
        try:
            if fresh:
                c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
            else:
                if keep is None:
                    keep = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
                c = keep
            c.request("GET", "/load/%d" % i)
            r = c.getresponse()
            r.read()
            if r.status == 200:
                ok += 1
            else:
                failed += 1
                errors.append("%d status %d" % (i, r.status))
            if fresh:
                c.close()
        except (OSError, http.client.HTTPException) as e:
            failed += 1
            errors.append("%d %s" % (i, type(e).__name__))
            if not fresh and keep is not None:
                keep.close()
                keep = None
        time.sleep(0.005)
    with open(out, "w") as f:
        f.write("%d %d\n" % (ok, failed))
        f.write("\n".join(errors[:10]) + "\n")

if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        load(sys.argv[2], sys.argv[3], sys.argv[4])
PY

# ---------------------------------------------------------------------------------------
# the two sidecars

HCM=type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
FILELOG=type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
ROUTER='{"name":"envoy.filters.http.router","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}'
ALPN='{"name":"istio.alpn","typed_config":{"@type":"type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig",
 "alpn_override":[{"alpn_override":["istio-http/1.0","istio"]},{"upstream_protocol":"HTTP11","alpn_override":["istio-http/1.1","istio"]},
 {"upstream_protocol":"HTTP2","alpn_override":["istio-h2","istio"]}]}}'

tls_params='"tls_params":{"tls_minimum_protocol_version":"TLSv1_2","tls_maximum_protocol_version":"TLSv1_3"}'
downstream_tls() {
	echo "{\"name\":\"envoy.transport_sockets.tls\",\"typed_config\":{
  \"@type\":\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\",
  \"require_client_certificate\":true,
  \"common_tls_context\":{$tls_params,\"alpn_protocols\":[\"h2\",\"http/1.1\"],
   \"tls_certificate_sds_secret_configs\":[$(sds_ref default)],
   \"combined_validation_context\":{\"default_validation_context\":{\"match_subject_alt_names\":[{\"prefix\":\"$TD/\"}]},
    \"validation_context_sds_secret_config\":$(sds_ref ROOTCA)}}}}"
}
inbound_hcm() { # CHAIN-TAG LOG
	echo "{\"name\":\"envoy.filters.network.http_connection_manager\",\"typed_config\":{\"@type\":\"$HCM\",
  \"stat_prefix\":\"inbound_0.0.0.0_80\",\"forward_client_cert_details\":\"APPEND_FORWARD\",
  \"set_current_client_cert_details\":{\"subject\":true,\"dns\":true,\"uri\":true},
  \"access_log\":[{\"name\":\"envoy.access_loggers.file\",\"typed_config\":{\"@type\":\"$FILELOG\",\"path\":\"$2\",
   \"log_format\":{\"text_format_source\":{\"inline_string\":\"$1 %DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_TLS_VERSION% %PROTOCOL% %RESPONSE_CODE%\\n\"}}}}],
  \"route_config\":{\"name\":\"inbound|80||\",\"virtual_hosts\":[{\"name\":\"inbound|http|80\",\"domains\":[\"*\"],
   \"routes\":[{\"match\":{\"prefix\":\"/\"},\"route\":{\"cluster\":\"inbound|80||\"},
    \"request_headers_to_add\":[{\"header\":{\"key\":\"x-chain\",\"value\":\"$1\"}},
     {\"header\":{\"key\":\"x-peer\",\"value\":\"%DOWNSTREAM_PEER_URI_SAN%\"}}]}]}]},
  \"http_filters\":[$ROUTER]}}"
}

ports P_APP L_OUT L_IN L_STRICT || {
	summary
	exit 1
}
A_ADMIN=$(free_port)
B_ADMIN=$(free_port)
CLUSTER="outbound|80||server.default.svc.cluster.local"
SNI="outbound_.80_._.server.default.svc.cluster.local"

cat >"$TMP/a.json" <<EOF
{"node": {"id": "sidecar~127.0.0.1~client.default~default.svc.cluster.local", "cluster": "client.default"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $A_ADMIN}}},
 "static_resources": {"clusters": [$(sds_grpc_cluster "$TMP/a.sock"),
  {"name": "$CLUSTER", "type": "STATIC", "connect_timeout": "2s",
   "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
     "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
     "use_downstream_protocol_config": {"http_protocol_options": {}, "http2_protocol_options": {}}}},
   "load_assignment": {"cluster_name": "$CLUSTER", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $L_IN}}},
      "metadata": {"filter_metadata": {"envoy.transport_socket_match": {"tlsMode": "istio"}}}}]}]},
   "transport_socket_matches": [
    {"name": "tlsMode-istio", "match": {"tlsMode": "istio"},
     "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
      "common_tls_context": {$tls_params,
       "alpn_protocols": ["istio-peer-exchange", "istio"],
       "tls_certificate_sds_secret_configs": [$(sds_ref default)],
       "combined_validation_context": {
        "default_validation_context": {"match_subject_alt_names": [{"exact": "$TD/ns/default/sa/server"}]},
        "validation_context_sds_secret_config": $(sds_ref ROOTCA)}},
      "sni": "$SNI"}}},
    {"name": "tlsMode-disabled", "match": {},
     "transport_socket": {"name": "envoy.transport_sockets.raw_buffer", "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}}]},
  {"name": "app-direct", "type": "STATIC", "connect_timeout": "2s",
   "load_assignment": {"cluster_name": "app-direct", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $P_APP}}}}]}]}}],
 "listeners": [
  {"name": "outbound", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $L_OUT}},
   "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
    "@type": "$HCM", "stat_prefix": "outbound_0.0.0.0_80",
    "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {"@type": "$FILELOG", "path": "$TMP/a.log",
     "log_format": {"text_format_source": {"inline_string": "%UPSTREAM_PEER_URI_SAN% %UPSTREAM_TLS_VERSION% %RESPONSE_CODE%\\n"}}}}],
    "route_config": {"name": "80", "virtual_hosts": [{"name": "server:80", "domains": ["*"],
     "routes": [{"match": {"prefix": "/mirror"}, "route": {"cluster": "app-direct",
       "request_mirror_policies": [{"cluster": "$CLUSTER"}]}},
      {"match": {"prefix": "/"}, "route": {"cluster": "$CLUSTER"}}]}]},
    "http_filters": [$ALPN, $ROUTER]}}]}]}]}}
EOF

cat >"$TMP/b.json" <<EOF
{"node": {"id": "sidecar~127.0.0.1~server.default~default.svc.cluster.local", "cluster": "server.default"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $B_ADMIN}}},
 "static_resources": {"clusters": [$(sds_grpc_cluster "$TMP/b.sock"),
  {"name": "inbound|80||", "type": "STATIC", "connect_timeout": "2s",
   "load_assignment": {"cluster_name": "inbound|80||", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $P_APP}}}}]}]}}],
 "listeners": [
  {"name": "virtualInbound", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $L_IN}},
   "listener_filters": [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {
     "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}],
   "filter_chains": [
    {"name": "istio-http", "filter_chain_match": {"transport_protocol": "tls",
      "application_protocols": ["istio-http/1.0", "istio-http/1.1", "istio-h2"]},
     "transport_socket": $(downstream_tls), "filters": [$(inbound_hcm istio-http "$TMP/b.log")]},
    {"name": "tls", "filter_chain_match": {"transport_protocol": "tls"},
     "transport_socket": $(downstream_tls), "filters": [$(inbound_hcm tls "$TMP/b.log")]},
    {"name": "plain", "filter_chain_match": {"transport_protocol": "raw_buffer"},
     "filters": [$(inbound_hcm plain "$TMP/b.log")]}]},
  {"name": "strict", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $L_STRICT}},
   "listener_filters": [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {
     "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}],
   "filter_chains": [
    {"name": "tls", "filter_chain_match": {"transport_protocol": "tls"},
     "transport_socket": $(downstream_tls), "filters": [$(inbound_hcm strict "$TMP/b.log")]}]}]}}
EOF
for f in a b; do
	if ! jq -e . "$TMP/$f.json" >/dev/null; then
		_t_fail "bootstrap $f" "invalid JSON"
		summary
		exit 1
	fi
done

export APP_COUNT="$TMP/app.count"
echo 0 >"$APP_COUNT"
"$PYTHON3" "$TMP/app.py" serve "$TMP/app.ready" "$P_APP" >"$TMP/app.log" 2>&1 &
_T_PIDS+=($!)
sds_secrets "$TMP/a.secrets" "$PKI/root.crt" "$PKI/client-chain.crt" "$PKI/client.key"
sds_secrets "$TMP/b.secrets" "$PKI/root.crt" "$PKI/server-chain.crt" "$PKI/server.key"
"$SERVER" --listen "unix:$TMP/a.sock" --log "$TMP/a.sds.log" "$TMP/a.secrets" >>"$TMP/sds.err" 2>&1 &
A_SDS=$!
"$SERVER" --listen "unix:$TMP/b.sock" --log "$TMP/b.sds.log" "$TMP/b.secrets" >>"$TMP/sds.err" 2>&1 &
B_SDS=$!
_T_PIDS+=("$A_SDS" "$B_SDS")
for i in $(seq 100); do
	[ -e "$TMP/app.ready" ] && break
	sleep 0.05
done
if ! wait_line "$TMP/a.sds.log" '^READY' 5 || ! wait_line "$TMP/b.sds.log" '^READY' 5 || [ ! -e "$TMP/app.ready" ]; then
	_t_fail "SDS servers and app" "$(tail -n 5 "$TMP/sds.err" "$TMP/app.log")"
	summary
	exit 1
fi

start_skiff -c "$TMP/a.json" --concurrency 1 # one worker: one pool
A_PID=$SKIFF_PID A_LOG=$SKIFF_LOG
start_skiff -c "$TMP/b.json" --concurrency 2
B_PID=$SKIFF_PID B_LOG=$SKIFF_LOG
if ! wait_admin "$A_ADMIN" "$A_PID" || ! wait_admin "$B_ADMIN" "$B_PID"; then
	_t_fail "sidecars start" "$(tail -n 20 "$A_LOG" "$B_LOG")"
	summary
	exit 1
fi
a_stat() { ADMIN=$A_ADMIN check_stat "$@"; }
b_stat() { ADMIN=$B_ADMIN check_stat "$@"; }
app_count() { cat "$APP_COUNT"; }

# until the secrets arrived (the first request may find the contexts not built yet)
for i in $(seq 100); do
	req "http://127.0.0.1:$L_OUT/warm"
	[ "$CODE" = 200 ] && break
	sleep 0.1
done

# ======================================================================= 1. through both sidecars

HASH=$(openssl x509 -in "$PKI/client.crt" -outform DER | sha256sum | cut -d' ' -f1)
SUBJECT=$(openssl x509 -in "$PKI/client.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
req -H 'x-forwarded-client-cert: By=spiffe://evil;URI=spiffe://cluster.local/ns/default/sa/admin' \
	"http://127.0.0.1:$L_OUT/hello"
check_eq "1: a request crosses client sidecar -> mTLS -> server sidecar -> app" "$CODE" 200
check_eq "1: the inbound chain matched on Istio's ALPN (istio.alpn offered istio-http/1.1)" \
	"$(jq -r .chain <<<"$BODY" 2>/dev/null)" istio-http
check_eq "1: the app sees one x-forwarded-client-cert element, Envoy's, the spoofed one dropped" \
	"$(jq -r '.xfcc | join("|")' <<<"$BODY" 2>/dev/null)" \
	"By=$TD/ns/default/sa/server;Hash=$HASH;Subject=\"$SUBJECT\";URI=$TD/ns/default/sa/client"
check_eq "1: the router has the client's identity for headers (%DOWNSTREAM_PEER_URI_SAN%)" \
	"$(jq -r .peer <<<"$BODY" 2>/dev/null)" "$TD/ns/default/sa/client"
wait_line "$TMP/b.log" "^istio-http" 3
check_eq "1: the server sidecar logs the client's SPIFFE id, TLSv1.3, HTTP/1.1" \
	"$(grep '^istio-http' "$TMP/b.log" | tail -n 1)" "istio-http $TD/ns/default/sa/client TLSv1.3 HTTP/1.1 200"
wait_line "$TMP/a.log" "200$" 3
check_eq "1: the client sidecar logs the server's SPIFFE id and TLSv1.3" \
	"$(tail -n 1 "$TMP/a.log")" "$TD/ns/default/sa/server TLSv1.3 200"
a_stat "cluster.$CLUSTER.ssl.handshake" 1
b_stat listener.127.0.0.1_$L_IN.ssl.handshake 1
b_stat "listener.127.0.0.1_$L_IN.ssl.no_certificate" 0
# what was negotiated, under Envoy's names, which exist once used
a_stat "cluster.$CLUSTER.ssl.versions.TLSv1.3" 1
a_stat "cluster.$CLUSTER.ssl.ciphers.TLS_AES_128_GCM_SHA256" 1
a_stat "cluster.$CLUSTER.ssl.curves.X25519" 1
a_stat "cluster.$CLUSTER.ssl.sigalgs.ecdsa_secp256r1_sha256" 1
b_stat "listener.127.0.0.1_$L_IN.ssl.sigalgs.ecdsa_secp256r1_sha256" 1
b_stat "listener.127.0.0.1_$L_IN.ssl.versions.TLSv1.2" missing
req "http://127.0.0.1:$L_OUT/again"
check_eq "1: a second request takes the pooled mTLS connection" "$CODE" 200
a_stat "cluster.$CLUSTER.upstream_cx_total" 1

before=$(app_count)
req "http://127.0.0.1:$L_OUT/mirror"
check_eq "1: a mirrored request is answered by the direct cluster" "$CODE/$(jq -r .chain <<<"$BODY" 2>/dev/null)" 200/
wait_line "$TMP/b.log" "^tls " 5
check_eq "1: its mirror went over mTLS to the server sidecar (its log)" "$(grep '^tls ' "$TMP/b.log" | head -n 1)" \
	"tls $TD/ns/default/sa/client TLSv1.3 HTTP/1.1 200"
check_eq "1: the app saw both" "$(app_count)" $((before + 2))
a_stat "cluster.$CLUSTER.ssl.handshake" 2

out=$(curl -s --max-time 5 --http2-prior-knowledge -w '\n%{http_version}' "http://127.0.0.1:$L_OUT/h2c" 2>&1)
check_eq "1: HTTP/2 (h2c) to the client sidecar goes on as HTTP/2 over mTLS (use_downstream_protocol)" \
	"$(tail -n 1 <<<"$out")/$(head -n 1 <<<"$out" | jq -r .chain 2>/dev/null)" 2/istio-http
wait_line "$TMP/b.log" "^istio-http .* HTTP/2 200" 3
check_eq "1: the server sidecar matched istio.alpn's istio-h2 and read HTTP/2 without ALPN h2" \
	"$(grep '^istio-http .* HTTP/2' "$TMP/b.log" | tail -n 1)" "istio-http $TD/ns/default/sa/client TLSv1.3 HTTP/2 200"
a_stat "cluster.$CLUSTER.upstream_cx_http2_total" 1

# ======================================================================= 2. clients straight to the inbound port

CURL_MTLS=(--cacert "$PKI/root.crt" --cert "$PKI/client-chain.crt" --key "$PKI/client.key"
	--resolve "server.default:$L_IN:127.0.0.1")
out=$(curl -s --max-time 5 --http2 "${CURL_MTLS[@]}" -w '\n%{http_version}' "https://server.default:$L_IN/h2" 2>&1)
check_eq "2: curl --http2 with a client certificate: HTTP/2 chosen by ALPN h2" "$(tail -n 1 <<<"$out")" 2
check_eq "2: ... served by the tls chain, the client's identity forwarded" \
	"$(head -n 1 <<<"$out" | jq -r '.chain + " " + (.xfcc | join("|"))' 2>/dev/null)" \
	"tls By=$TD/ns/default/sa/server;Hash=$HASH;Subject=\"$SUBJECT\";URI=$TD/ns/default/sa/client"
wait_line "$TMP/b.log" "^tls .* HTTP/2 200" 3
check_eq "2: logged as HTTP/2 over TLSv1.3" "$(grep '^tls ' "$TMP/b.log" | tail -n 1)" \
	"tls $TD/ns/default/sa/client TLSv1.3 HTTP/2 200"
out=$(curl -s --max-time 5 --http1.1 "${CURL_MTLS[@]}" -w '\n%{http_version}' "https://server.default:$L_IN/h1" 2>&1)
check_eq "2: curl --http1.1: HTTP/1.1 chosen by ALPN http/1.1" "$(tail -n 1 <<<"$out")" 1.1
head -c 1048576 /dev/urandom >"$TMP/big"
out=$(curl -s --max-time 20 --http2 "${CURL_MTLS[@]}" --data-binary "@$TMP/big" "https://server.default:$L_IN/up" 2>&1)
check_eq "2: a 1 MiB upload over HTTP/2 + TLS arrives whole" "$(jq -r .len <<<"$out" 2>/dev/null)" 1048576
out=$(curl -s --max-time 20 --http1.1 "${CURL_MTLS[@]}" --data-binary "@$TMP/big" "https://server.default:$L_IN/up" 2>&1)
check_eq "2: a 1 MiB upload over HTTP/1.1 + TLS arrives whole" "$(jq -r .len <<<"$out" 2>/dev/null)" 1048576

before=$(app_count)
req --cacert "$PKI/root.crt" --resolve "server.default:$L_IN:127.0.0.1" "https://server.default:$L_IN/nocert"
check_eq "2: no client certificate: no response" "$CODE" 000
req --cacert "$PKI/root.crt" --cert "$PKI/foreign-chain.crt" --key "$PKI/foreign.key" \
	--resolve "server.default:$L_IN:127.0.0.1" "https://server.default:$L_IN/foreign"
check_eq "2: a client certificate of a foreign CA: no response" "$CODE" 000
req --cacert "$PKI/root.crt" --cert "$PKI/expired-chain.crt" --key "$PKI/expired.key" \
	--resolve "server.default:$L_IN:127.0.0.1" "https://server.default:$L_IN/expired"
check_eq "2: an expired client certificate: no response" "$CODE" 000
req "http://127.0.0.1:$L_STRICT/plain"
check_eq "2: plaintext HTTP to the STRICT port: no response" "$CODE" 000
check_eq "2: the app saw none of the four" "$(app_count)" "$before"
b_stat "listener.127.0.0.1_$L_IN.ssl.fail_verify_no_cert" 1
b_stat "listener.127.0.0.1_$L_IN.ssl.fail_verify_error" 2
b_stat "listener.127.0.0.1_$L_STRICT.no_filter_chain_match" 1

# hostile bytes: a ClientHello cut short by garbage, and garbage TLS records after a good
# handshake (sent on the raw socket under the TLS session); skiff closes those connections
# and goes on serving
before=$(app_count)
cat >"$TMP/hostile.py" <<'PY'
import os, socket, ssl, sys
port, pki = int(sys.argv[1]), sys.argv[2]
out = []
s = socket.create_connection(("127.0.0.1", port), timeout=3)
s.sendall(bytes.fromhex("160301020001") + os.urandom(600))  # a record header, then noise
s.settimeout(3)
try:
    d = s.recv(4096)  # PERMISSIVE: not TLS, so the raw_buffer chain's HTTP codec answers 400
    out.append("hello: " + (d.split(b" ")[1].decode() if d.startswith(b"HTTP/1.1 ") else "closed" if not d else "?"))
except OSError as e:
    out.append("hello: " + type(e).__name__)
s.close()
ctx = ssl.create_default_context(cafile=pki + "/root.crt")
ctx.check_hostname = False
ctx.load_cert_chain(pki + "/client-chain.crt", pki + "/client.key")
ctx.set_alpn_protocols(["http/1.1"])
t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=3))
raw = socket.socket(fileno=t.detach())  # the TCP socket under the session
raw.sendall(bytes.fromhex("1703030100") + os.urandom(256))  # application data nobody sealed
raw.settimeout(3)
try:
    while raw.recv(4096):
        pass
    out.append("record: closed")
except OSError as e:
    out.append("record: " + type(e).__name__)
print(" ".join(out))
PY
out=$(timeout 20 "$PYTHON3" "$TMP/hostile.py" "$L_IN" "$PKI" 2>&1)
check_match "2: hostile bytes on the TLS port: both connections closed ($out)" "$out" \
	'^hello: (400|closed|ConnectionResetError) record: (closed|ConnectionResetError)$'
check_eq "2: ... the app saw nothing of them" "$(app_count)" "$before"
check "2: ... the server sidecar still runs" _t_running "$B_PID"
out=$(curl -s --max-time 5 --http1.1 "${CURL_MTLS[@]}" "https://server.default:$L_IN/after-hostile" 2>&1)
check_eq "2: ... and serves the next client" "$(jq -r .path <<<"$out" 2>/dev/null)" /after-hostile

req -H 'x-forwarded-client-cert: By=spiffe://evil' "http://127.0.0.1:$L_IN/permissive"
check_eq "2: PERMISSIVE: plaintext HTTP is served by the raw_buffer chain" "$CODE/$(jq -r .chain <<<"$BODY" 2>/dev/null)" 200/plain
check_eq "2: ... and a client's x-forwarded-client-cert is not forwarded without mTLS" \
	"$(jq -r '.xfcc | length' <<<"$BODY" 2>/dev/null)" 0

# ======================================================================= 3. rotation under load

"$PYTHON3" "$TMP/app.py" load "$L_OUT" "$TMP/load.stop" "$TMP/load.out" >"$TMP/load.err" 2>&1 &
LOAD=$!
_T_PIDS+=("$LOAD")
sleep 1
rotate() { # SIDE CA CHAIN-NAME
	local pid
	sds_secrets "$TMP/$1.secrets" "$2" "$PKI/$3-chain.crt" "$PKI/$3.key"
	pid=$([ "$1" = a ] && echo "$A_SDS" || echo "$B_SDS")
	kill -HUP "$pid"
	sleep 1
}
rotate b "$PKI/root.crt" server-b
rotate a "$PKI/bundle.crt" client
rotate b "$PKI/bundle.crt" server-b
rotate a "$PKI/bundle.crt" client2
rotate b "$PKI/bundle.crt" server2
touch "$TMP/load.stop"
for i in $(seq 100); do
	[ -s "$TMP/load.out" ] && break
	sleep 0.1
done
read -r ok failed <"$TMP/load.out" 2>/dev/null
check_range "3: requests during the rotations ($ok ok)" "${ok:-0}" 50 1000000
check_eq "3: zero failed requests across five rotations ($(sed -n 2,4p "$TMP/load.out" | tr '\n' ' '))" "${failed:-x}" 0
a_stat sds.default.update_success 3 # the first push and two more
a_stat sds.ROOTCA.update_success 3
b_stat sds.default.update_success 4
b_stat sds.ROOTCA.update_success 4
a_stat "cluster.$CLUSTER.client_ssl_socket_factory.ssl_context_update_by_sds" 3
issuer=$(timeout 5 openssl s_client -connect "127.0.0.1:$L_IN" -cert "$PKI/client2-chain.crt" -key "$PKI/client2.key" \
	-CAfile "$PKI/bundle.crt" -alpn istio-http/1.1 </dev/null 2>/dev/null | openssl x509 -noout -issuer 2>/dev/null)
check_contains "3: the server sidecar now presents the certificate issued by the second root" "$issuer" root2
req "http://127.0.0.1:$L_OUT/after"
check_eq "3: a request after the rotations" "$CODE" 200
check_eq "3: ... carries the re-issued client certificate's hash" \
	"$(jq -r '.xfcc[0]' <<<"$BODY" 2>/dev/null | sed -E 's/.*Hash=([0-9a-f]+).*/\1/')" \
	"$(openssl x509 -in "$PKI/client2.crt" -outform DER | sha256sum | cut -d' ' -f1)"

check "the client sidecar still runs" _t_running "$A_PID"
check "the server sidecar still runs" _t_running "$B_PID"
stop_skiff "$A_PID"
stop_skiff "$B_PID"
summary
