#!/usr/bin/env bash
# Istio's own outbound cluster, unchanged, originates mTLS exactly as configured: the cluster
# `outbound|9080|v1|productpage.default.svc.cluster.local` is taken from the real config dump
# (../shared/conformance/istio/configdump/http_config.json) with its transport_socket_matches
# as istiod wrote them (SDS `default` and `ROOTCA` over `sds-grpc`, exact SANs, SNI, ALPN);
# only its EDS becomes a static endpoint marked tlsMode istio (and one without the mark).
# The endpoint is a python TLS server that requires a client certificate and reports what
# the handshake carried. Checked through an HCM with istio.alpn and through tcp_proxy:
#   SNI, the ALPN offered (Istio's, or istio.alpn's), TLS 1.3, the client's SPIFFE id, the
#   server verified against the exact SAN list (a server with another identity is refused:
#   ssl.fail_verify_san), and the endpoint without the mark gets plaintext.
# Loopback and unix sockets only; every wait is bounded.
. "$(dirname "$0")/lib.sh"

require_tools curl jq python3 openssl || {
	summary
	exit 1
}
[ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3
PYTHON3=${PYTHON3:-python3}
DUMP="$SKIFF_CONFORMANCE/istio/configdump/http_config.json"
if [ ! -f "$DUMP" ]; then
	skip "Istio's cluster originates mTLS" "no conformance corpus at $SKIFF_CONFORMANCE"
	summary
	exit 0
fi
SKIFF_BUILD=${SKIFF_BUILD:-$(cd "$(dirname "$SKIFF_BIN")/.." && pwd)}
SERVER="$SKIFF_BUILD/xds/server/skiff-xds-server"
if [ ! -x "$SERVER" ]; then
	_t_fail "binaries" "$SERVER is not built"
	summary
	exit 1
fi
PKI=$TMP/pki
TD=spiffe://cluster.local
CLUSTER="outbound|9080|v1|productpage.default.svc.cluster.local"

if ! { bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" ca &&
	bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" workload client default sleep &&
	bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" workload pp default bookinfo-productpage &&
	bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" workload other default someone-else; } >"$TMP/ca.log" 2>&1; then
	_t_fail "test CA" "$(tail -n 5 "$TMP/ca.log")"
	summary
	exit 1
fi
sds_secrets "$TMP/secrets.json" "$PKI/root.crt" "$PKI/client-chain.crt" "$PKI/client.key"

# the endpoint: TLS, client certificate required; answers each connection with one JSON line
# of what the handshake carried (HTTP requests get it as an HTTP response)
cat >"$TMP/tls.py" <<'PY'
import json, os, socket, ssl, sys, threading, time

def handle(ctx, c, log):
    seen = {"sni": None}
    def sni_cb(s, name, _):
        seen["sni"] = name
    ctx.sni_callback = sni_cb
    try:
        c.settimeout(5)
        t = ctx.wrap_socket(c, server_side=True)
    except (ssl.SSLError, OSError) as e:
        with open(log, "a") as f:
            f.write(json.dumps({"error": type(e).__name__}) + "\n")
        return
    san = [v for k, v in t.getpeercert().get("subjectAltName", ()) if k == "URI"]
    info = {"sni": seen["sni"], "alpn": t.selected_alpn_protocol(), "version": t.version(), "peer": san}
    with open(log, "a") as f:
        f.write(json.dumps(info) + "\n")
    try:
        first = t.recv(65536)
        body = json.dumps(info).encode()
        if first.startswith(b"GET "):
            t.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                      b"connection: close\r\n\r\n%s" % (len(body), body))
        else:
            t.sendall(body + b"\n")
        t.close()
    except OSError:
        pass

def serve(ready, port, cert, key, ca, log):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["istio-http/1.1", "istio-peer-exchange", "istio", "http/1.1"])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", int(port)))
    ls.listen(64)
    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=handle, args=(ctx, c, log), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    open(ready, "w").close()
    parent, deadline = os.getppid(), time.time() + 120
    while os.getppid() == parent and time.time() < deadline:
        time.sleep(0.2)

def plain(ready, port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", int(port)))
    ls.listen(16)
    def loop():
        while True:
            c, _ = ls.accept()
            c.settimeout(5)
            try:
                d = c.recv(65536)
                body = b'{"plain": true}'
                c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
                          if d.startswith(b"GET ") else body + b"\n")
            except OSError:
                pass
            c.close()
    threading.Thread(target=loop, daemon=True).start()
    open(ready, "w").close()
    parent, deadline = os.getppid(), time.time() + 120
    while os.getppid() == parent and time.time() < deadline:
        time.sleep(0.2)

if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(*sys.argv[2:8])
    else:
        plain(*sys.argv[2:4])
PY

ports P_TLS P_OTHER P_PLAIN L_HTTP L_TCP L_OTHER L_PLAIN || {
	summary
	exit 1
}
ADMIN=$(free_port)
"$PYTHON3" "$TMP/tls.py" serve "$TMP/tls.ready" "$P_TLS" "$PKI/pp-chain.crt" "$PKI/pp.key" "$PKI/root.crt" "$TMP/tls.log" \
	>"$TMP/tls.err" 2>&1 &
_T_PIDS+=($!)
"$PYTHON3" "$TMP/tls.py" serve "$TMP/other.ready" "$P_OTHER" "$PKI/other-chain.crt" "$PKI/other.key" "$PKI/root.crt" \
	"$TMP/other.log" >"$TMP/other.err" 2>&1 &
_T_PIDS+=($!)
"$PYTHON3" "$TMP/tls.py" plain "$TMP/plain.ready" "$P_PLAIN" >"$TMP/plain.err" 2>&1 &
_T_PIDS+=($!)
"$SERVER" --listen "unix:$TMP/sds.sock" --log "$TMP/sds.log" "$TMP/secrets.json" >"$TMP/sds.err" 2>&1 &
_T_PIDS+=($!)
for i in $(seq 100); do
	[ -e "$TMP/tls.ready" ] && [ -e "$TMP/other.ready" ] && [ -e "$TMP/plain.ready" ] && break
	sleep 0.05
done
wait_line "$TMP/sds.log" '^READY' 5 || _t_fail "SDS server" "$(cat "$TMP/sds.err")"

# istio_cluster NAME PORT [MARK]: Istio's cluster as the config dump has it, renamed, with a
# static endpoint (marked tlsMode istio unless MARK is "none")
istio_cluster() {
	jq -c --arg name "$1" --argjson port "$2" --arg mark "${3:-istio}" --arg orig "$CLUSTER" '
		[.configs[] | (.dynamic_active_clusters // [])[] | .cluster | select(.name == $orig)][0]
		| del(.eds_cluster_config) | del(.["@type"]) | .type = "STATIC" | .name = $name
		| .load_assignment = {"cluster_name": $name, "endpoints": [{"lb_endpoints": [
			{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $port}}}}
			+ (if $mark == "none" then {} else
			   {"metadata": {"filter_metadata": {"envoy.transport_socket_match": {"tlsMode": $mark}}}} end)]}]}' "$DUMP"
}
HCM=type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
TCP=type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
http_listener() { # NAME PORT CLUSTER
	echo "{\"name\": \"$1\", \"address\": {\"socket_address\": {\"address\": \"127.0.0.1\", \"port_value\": $2}},
  \"filter_chains\": [{\"filters\": [{\"name\": \"envoy.filters.network.http_connection_manager\", \"typed_config\": {
   \"@type\": \"$HCM\", \"stat_prefix\": \"$1\",
   \"route_config\": {\"name\": \"r\", \"virtual_hosts\": [{\"name\": \"v\", \"domains\": [\"*\"],
     \"routes\": [{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"$3\"}}]}]},
   \"http_filters\": [{\"name\": \"istio.alpn\", \"typed_config\": {
      \"@type\": \"type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig\",
      \"alpn_override\": [{\"alpn_override\": [\"istio-http/1.0\", \"istio\"]},
       {\"upstream_protocol\": \"HTTP11\", \"alpn_override\": [\"istio-http/1.1\", \"istio\"]},
       {\"upstream_protocol\": \"HTTP2\", \"alpn_override\": [\"istio-h2\", \"istio\"]}]}},
    {\"name\": \"envoy.filters.http.router\", \"typed_config\": {
      \"@type\": \"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\"}}]}}]}]}"
}
cat >"$TMP/boot.json" <<EOF
{"node": {"id": "sidecar~127.0.0.1~sleep.default~default.svc.cluster.local", "cluster": "sleep.default"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $ADMIN}}},
 "static_resources": {"clusters": [
  $(sds_grpc_cluster "$TMP/sds.sock"),
  $(istio_cluster "$CLUSTER" "$P_TLS"), $(istio_cluster other "$P_OTHER"), $(istio_cluster plain "$P_PLAIN" none)],
 "listeners": [$(http_listener http "$L_HTTP" "$CLUSTER"), $(http_listener otherl "$L_OTHER" other),
  $(http_listener plainl "$L_PLAIN" plain),
  {"name": "tcp", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $L_TCP}},
   "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
     "@type": "$TCP", "stat_prefix": "tcp", "cluster": "$CLUSTER"}}]}]}]}}
EOF
if ! jq -e '.static_resources.clusters[1].transport_socket_matches[0].name == "tlsMode-istio"' "$TMP/boot.json" >/dev/null; then
	_t_fail "bootstrap" "Istio's cluster was not found in $DUMP"
	summary
	exit 1
fi
start_skiff -c "$TMP/boot.json" --concurrency 1
if ! wait_admin "$ADMIN"; then
	_t_fail "skiff starts with Istio's cluster" "$(tail -n 20 "$SKIFF_LOG")"
	summary
	exit 1
fi
for i in $(seq 100); do
	[ "$(stat "cluster.$CLUSTER.client_ssl_socket_factory.ssl_context_update_by_sds")" = 1 ] && break
	sleep 0.05
done

req "http://127.0.0.1:$L_HTTP/x"
check_eq "HTTP through Istio's cluster: 200 from the TLS endpoint" "$CODE" 200
check_eq "SNI as istiod wrote it" "$(jq -r .sni <<<"$BODY" 2>/dev/null)" "outbound_.9080_.v1_.productpage.default.svc.cluster.local"
check_eq "ALPN: istio.alpn's istio-http/1.1 (the HCM's override of the cluster's list)" "$(jq -r .alpn <<<"$BODY" 2>/dev/null)" istio-http/1.1
check_eq "TLS 1.3" "$(jq -r .version <<<"$BODY" 2>/dev/null)" TLSv1.3
check_eq "the client certificate from SDS default: its SPIFFE id" "$(jq -r '.peer | join(",")' <<<"$BODY" 2>/dev/null)" "$TD/ns/default/sa/sleep"
check_stat "cluster.$CLUSTER.ssl.handshake" 1

out=$(printf 'hello\n' | timeout 5 "$PYTHON3" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=4)
s.sendall(sys.stdin.buffer.read())
print(s.makefile().readline().strip())' "$L_TCP" 2>&1)
check_eq "tcp_proxy through Istio's cluster: ALPN istio-peer-exchange (the cluster's own list)" \
	"$(jq -r '.alpn + " " + .sni' <<<"$out" 2>/dev/null)" "istio-peer-exchange outbound_.9080_.v1_.productpage.default.svc.cluster.local"

req "http://127.0.0.1:$L_OTHER/x"
check_eq "a server whose identity is not in the exact SAN list: 503" "$CODE" 503
check_stat cluster.other.ssl.fail_verify_san 1
req "http://127.0.0.1:$L_PLAIN/x"
check_eq "an endpoint without the tlsMode mark: plaintext (tlsMode-disabled)" "$CODE/$BODY" '200/{"plain": true}'
check_stat cluster.plain.ssl.handshake 0
check "skiff still runs" _t_running "$SKIFF_PID"
stop_skiff
summary
