#!/usr/bin/env bash
# TLS contexts from SDS on the L4 path, end to end on loopback, in Istio's shape: the test xDS
# server (build/xds/server/skiff-xds-server) plays pilot-agent on a unix socket (`sds-grpc`
# pipe cluster) and serves `default` (workload chain + key) and `ROOTCA` (trusted CA), issued
# at test time by tests/tls/ca.sh. One skiff runs both sidecars:
#   client listener (plain) -> cluster with a tlsMode-istio UpstreamTlsContext (SDS default +
#   combined_validation_context with SDS ROOTCA) -> server listener (tls_inspector; chain
#   with a DownstreamTlsContext: SDS default + ROOTCA, require_client_certificate) -> echo.
#   0. only ROOTCA served: as Envoy, the server stays INITIALIZING (static resources wait for
#      their SDS secrets): connections are refused, nothing goes in clear
#   1. `default` arrives: contexts built, data passes, the peer SPIFFE id is logged,
#      ssl_context_update_by_sds 1 on both sides; the secret `never` (initial_fetch_timeout
#      1 s) never comes: skiff started when it timed out, its listener and cluster refuse
#      their TLS connections (*_context_secrets_not_ready)
#   2. `default` rotated (new certificate, another identity, SIGHUP): a connection opened
#      before still works on its old context; new ones pass and present the new identity;
#      ssl_context_update_by_sds 2
# Every wait is bounded.
. "$(dirname "$0")/lib.sh"

require_tools curl jq python3 openssl || {
	summary
	exit 1
}
[ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3
PYTHON3=${PYTHON3:-python3}

SKIFF_BUILD=${SKIFF_BUILD:-$(cd "$(dirname "$SKIFF_BIN")/.." && pwd)}
SERVER="$SKIFF_BUILD/xds/server/skiff-xds-server"
CA="$SKIFF_SRC/tests/tls/ca.sh"
if [ ! -x "$SERVER" ]; then
	_t_fail "binaries" "$SERVER is not built"
	summary
	exit 1
fi

SOCK="$TMP/sds.sock"
SLOG="$TMP/server.log"
SECRETS="$TMP/secrets.json"
CERTS="$TMP/certs"
SECRET_TYPE=type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
TD=spiffe://cluster.local

if ! { bash "$CA" "$CERTS" ca &&
	bash "$CA" "$CERTS" workload w1 default workload --days 30 &&
	bash "$CA" "$CERTS" workload w2 default workload-rotated --days 30; } >"$TMP/ca.log" 2>&1; then
	_t_fail "certificates" "tests/tls/ca.sh failed: $(tail -n 5 "$TMP/ca.log")"
	summary
	exit 1
fi

# write_secrets CA [CHAIN KEY]: the server's resource file (inline bytes, as pilot-agent
# sends), replaced atomically; without CHAIN only ROOTCA.
write_secrets() {
	jq -n --rawfile ca "$1" --arg t "$SECRET_TYPE" '[
		{"@type": $t, "name": "ROOTCA", "validation_context": {
			"trusted_ca": {"inline_bytes": ($ca | @base64)}}}]' >"$SECRETS.tmp" || return 1
	if [ -n "${2:-}" ]; then
		jq --rawfile chain "$2" --rawfile key "$3" --arg t "$SECRET_TYPE" '. + [
			{"@type": $t, "name": "default", "tls_certificate": {
				"certificate_chain": {"inline_bytes": ($chain | @base64)},
				"private_key": {"inline_bytes": ($key | @base64)}}}]' "$SECRETS.tmp" >"$SECRETS.tmp2" &&
			mv "$SECRETS.tmp2" "$SECRETS.tmp" || return 1
	fi
	mv "$SECRETS.tmp" "$SECRETS"
}

# an echo upstream and clients (python, every socket operation with a timeout)
cat >"$TMP/h.py" <<'PY'
import os, socket, sys, threading, time

def _echo(c):
    try:
        c.settimeout(30)
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
    except OSError:
        pass
    finally:
        c.close()

def serve(ready, port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", int(port)))
    ls.listen(128)
    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=_echo, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    open(ready, "w").close()
    parent, deadline = os.getppid(), time.time() + 120
    while os.getppid() == parent and time.time() < deadline:
        time.sleep(0.2)

def exchange(s, msg):
    buf = b""
    try:
        s.sendall(msg.encode() + b"\n")
        while b"\n" not in buf:
            d = s.recv(65536)
            if not d:
                return "CLOSED"
            buf += d
    except socket.timeout:
        return "TIMEOUT"
    except OSError:
        return "RESET"
    return buf.split(b"\n")[0].decode(errors="replace")

def line(port, msg):
    try:
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=3)
    except OSError:
        return "REFUSED"
    s.settimeout(3)
    try:
        return exchange(s, msg)
    finally:
        s.close()

def hold(port, first_out, go, msg1, msg2):
    """One connection: msg1 now (its answer into first_out), msg2 once the file go exists."""
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=3)
    s.settimeout(3)
    with open(first_out + ".tmp", "w") as f:
        f.write(exchange(s, msg1) + "\n")
    os.rename(first_out + ".tmp", first_out)
    deadline = time.time() + 20
    while not os.path.exists(go) and time.time() < deadline:
        time.sleep(0.05)
    print(exchange(s, msg2))
    s.close()

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(args[0], args[1])
    elif cmd == "line":
        print(line(args[0], args[1]))
    elif cmd == "hold":
        hold(*args)
PY
pyh() { timeout 30 "$PYTHON3" "$TMP/h.py" "$@"; }

# until_line PORT MSG SECONDS: retries a line until it echoes (the secrets arrive async).
until_line() {
	local i r
	for i in $(seq $(($3 * 10))); do
		r=$(pyh line "$1" "$2")
		[ "$r" = "$2" ] && break
		sleep 0.1
	done
	echo "$r"
}

ports P_APP L_OUT L_IN L_NEVER L_NEVER_OUT
ADMIN=$(free_port)
CLUSTER="outbound|$L_IN||server.default.svc.cluster.local"
SNI="outbound_.${L_IN}_._.server.default.svc.cluster.local"
TCP=type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
FILELOG=type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
tcp_filter() { # STAT-PREFIX CLUSTER LOG FORMAT
	echo "{\"name\":\"envoy.filters.network.tcp_proxy\",\"typed_config\":{\"@type\":\"$TCP\",\"stat_prefix\":\"$1\",\"cluster\":\"$2\",
  \"access_log\":[{\"name\":\"envoy.access_loggers.file\",\"typed_config\":{\"@type\":\"$FILELOG\",\"path\":\"$3\",
  \"log_format\":{\"text_format_source\":{\"inline_string\":\"$4\\n\"}}}}]}}"
}

cat >"$TMP/boot.json" <<EOF
{"node": {"id": "sidecar~127.0.0.1~workload.default~default.svc.cluster.local", "cluster": "workload.default"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $ADMIN}}},
 "static_resources": {"clusters": [
  {"name": "sds-grpc", "type": "STATIC", "connect_timeout": "1s",
   "load_assignment": {"cluster_name": "sds-grpc", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"pipe": {"path": "$SOCK"}}}}]}]},
   "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
     "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
     "explicit_http_config": {"http2_protocol_options": {}}}}},
  {"name": "$CLUSTER", "type": "STATIC", "connect_timeout": "2s",
   "load_assignment": {"cluster_name": "x", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $L_IN}}},
      "metadata": {"filter_metadata": {"envoy.transport_socket_match": {"tlsMode": "istio"}}}}]}]},
   "transport_socket_matches": [
    {"name": "tlsMode-istio", "match": {"tlsMode": "istio"},
     "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
      "common_tls_context": {
       "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
       "alpn_protocols": ["istio-peer-exchange", "istio"],
       "tls_certificate_sds_secret_configs": [$(sds_ref default)],
       "combined_validation_context": {
        "default_validation_context": {"match_subject_alt_names": [{"prefix": "$TD/ns/default/sa/workload"}]},
        "validation_context_sds_secret_config": $(sds_ref ROOTCA)}},
      "sni": "$SNI"}}},
    {"name": "tlsMode-disabled", "match": {},
     "transport_socket": {"name": "envoy.transport_sockets.raw_buffer", "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}}]},
  {"name": "inbound|$P_APP||", "type": "STATIC", "connect_timeout": "2s",
   "load_assignment": {"cluster_name": "app", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $P_APP}}}}]}]}},
  {"name": "never-c", "type": "STATIC", "connect_timeout": "2s",
   "load_assignment": {"cluster_name": "never-c", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $L_IN}}}}]}]},
   "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
     "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
     "common_tls_context": {"tls_certificate_sds_secret_configs": [$(sds_ref never 1s)],
      "validation_context_sds_secret_config": $(sds_ref ROOTCA)}}}}],
 "listeners": [
  {"name": "never-out", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $L_NEVER_OUT}},
   "filter_chains": [{"filters": [$(tcp_filter never_out never-c "$TMP/never-out.log" "%UPSTREAM_HOST%")]}]},
  {"name": "never-in", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $L_NEVER}},
   "listener_filters": [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {
     "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}],
   "filter_chains": [{"filter_chain_match": {"transport_protocol": "tls"},
     "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
      "common_tls_context": {"tls_certificate_sds_secret_configs": [$(sds_ref never 1s)]}}},
     "filters": [$(tcp_filter never_in "inbound|$P_APP||" "$TMP/never-in.log" "%DOWNSTREAM_PEER_URI_SAN%")]}]},
  {"name": "outbound", "stat_prefix": "outbound",
   "address": {"socket_address": {"address": "127.0.0.1", "port_value": $L_OUT}},
   "filter_chains": [{"filters": [$(tcp_filter outbound "$CLUSTER" "$TMP/out.log" "%UPSTREAM_PEER_URI_SAN%")]}]},
  {"name": "inbound", "stat_prefix": "inbound",
   "address": {"socket_address": {"address": "127.0.0.1", "port_value": $L_IN}},
   "listener_filters": [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {
     "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}],
   "filter_chains": [
    {"filter_chain_match": {"transport_protocol": "tls"},
     "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
      "require_client_certificate": true,
      "common_tls_context": {
       "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
       "alpn_protocols": ["h2", "http/1.1"],
       "tls_certificate_sds_secret_configs": [$(sds_ref default)],
       "combined_validation_context": {
        "default_validation_context": {"match_subject_alt_names": [{"prefix": "$TD/"}]},
        "validation_context_sds_secret_config": $(sds_ref ROOTCA)}}}},
     "filters": [$(tcp_filter inbound_tls "inbound|$P_APP||" "$TMP/in.log" "%DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_TLS_VERSION%")]}]}]}}
EOF
if ! jq -e . "$TMP/boot.json" >/dev/null; then
	_t_fail "bootstrap" "invalid JSON"
	summary
	exit 1
fi

READY="$TMP/echo.ready"
"$PYTHON3" "$TMP/h.py" serve "$READY" "$P_APP" >"$TMP/echo.log" 2>&1 &
_T_PIDS+=($!)
for i in $(seq 100); do
	[ -e "$READY" ] && break
	sleep 0.03
done

# ======================================================================= 0. only ROOTCA

write_secrets "$CERTS/root.crt"
"$SERVER" --listen "unix:$SOCK" --log "$SLOG" "$SECRETS" >>"$TMP/server.err" 2>&1 &
SERVER_PID=$!
_T_PIDS+=("$SERVER_PID")
if ! wait_line "$SLOG" '^READY listen=unix:' 5; then
	_t_fail "xDS server ready" "$(tail -n 5 "$TMP/server.err")"
	summary
	exit 1
fi
start_skiff -c "$TMP/boot.json" --concurrency 2
if ! wait_admin "$ADMIN"; then
	_t_fail "skiff starts" "$(tail -n 20 "$SKIFF_LOG")"
	summary
	exit 1
fi
check_stat sds.ROOTCA.update_success 1
r=$(pyh line "$L_OUT" too-early)
check_eq "0: before 'default' arrives skiff is not serving: the connection is refused, nothing in clear" "$r" REFUSED
check_eq "0: ... it is INITIALIZING, as Envoy while static resources wait for SDS" \
	"$(curl -s --max-time 3 "http://127.0.0.1:$ADMIN/ready")" INITIALIZING
check_contains "0: the wait is logged" "$(cat "$SKIFF_LOG")" "the static resources wait for"
check_stat "cluster.$CLUSTER.client_ssl_socket_factory.ssl_context_update_by_sds" 0
check_stat listener.inbound.server_ssl_socket_factory.ssl_context_update_by_sds 0

# ======================================================================= 1. default arrives

write_secrets "$CERTS/root.crt" "$CERTS/w1-chain.crt" "$CERTS/w1.key"
kill -HUP "$SERVER_PID"
check_stat sds.default.update_success 1
check_eq "1: a line crosses client sidecar -> mTLS (SDS) -> server sidecar -> app" \
	"$(until_line "$L_OUT" over-sds-mtls 5)" over-sds-mtls
check_stat "cluster.$CLUSTER.client_ssl_socket_factory.ssl_context_update_by_sds" 1
check_stat listener.inbound.server_ssl_socket_factory.ssl_context_update_by_sds 1
check_stat listener.inbound.ssl.handshake 1
wait_line "$TMP/in.log" . 3
check_eq "1: the server side logs the client's SPIFFE id" "$(tail -n 1 "$TMP/in.log" 2>/dev/null)" \
	"$TD/ns/default/sa/workload TLSv1.3"
wait_line "$TMP/out.log" . 3
check_eq "1: the client side logs the server's SPIFFE id" "$(tail -n 1 "$TMP/out.log" 2>/dev/null)" \
	"$TD/ns/default/sa/workload"
check_eq "1: the secret 'never' did not come: after its 1 s initial_fetch_timeout skiff started anyway" \
	"$(curl -s --max-time 3 "http://127.0.0.1:$ADMIN/ready")" LIVE
r=$(timeout 5 openssl s_client -connect "127.0.0.1:$L_NEVER" </dev/null 2>&1 | grep -c "BEGIN CERTIFICATE")
check_eq "1: ... its listener's TLS chain refuses connections (no certificate to present)" "$r" 0
check_stat "listener.127.0.0.1_$L_NEVER.server_ssl_socket_factory.downstream_context_secrets_not_ready" 1
r=$(pyh line "$L_NEVER_OUT" never)
check_match "1: ... its cluster refuses to connect, never in clear ($r)" "$r" '^(CLOSED|RESET)$'
check_stat cluster.never-c.client_ssl_socket_factory.upstream_context_secrets_not_ready 1
check_contains "1: the timeout is logged" "$(cat "$SKIFF_LOG")" "did not all arrive within"

# a connection opened before the rotation
pyh hold "$L_OUT" "$TMP/hold.first" "$TMP/hold.go" before-rotation after-rotation >"$TMP/hold.out" 2>&1 &
HOLD_PID=$!
wait_line "$TMP/hold.first" . 5
check_eq "2: the old connection works before the rotation" "$(cat "$TMP/hold.first" 2>/dev/null)" before-rotation

# ======================================================================= 2. rotation

write_secrets "$CERTS/root.crt" "$CERTS/w2-chain.crt" "$CERTS/w2.key"
kill -HUP "$SERVER_PID"
check_stat sds.default.update_success 2
check_stat "cluster.$CLUSTER.client_ssl_socket_factory.ssl_context_update_by_sds" 2
check_stat listener.inbound.server_ssl_socket_factory.ssl_context_update_by_sds 2
check_eq "2: a new connection passes with the rotated certificate" "$(pyh line "$L_OUT" after-rotation-new)" \
	after-rotation-new
check_eq "2: the server side verified the rotated client certificate (its SPIFFE id logged)" \
	"$(tail -n 1 "$TMP/in.log" 2>/dev/null)" "$TD/ns/default/sa/workload-rotated TLSv1.3"
check_eq "2: the client side verified the rotated server certificate" \
	"$(tail -n 1 "$TMP/out.log" 2>/dev/null)" "$TD/ns/default/sa/workload-rotated"
touch "$TMP/hold.go"
wait "$HOLD_PID"
check_eq "2: the connection opened before the rotation still works" "$(cat "$TMP/hold.out")" after-rotation
check_stat listener.inbound.ssl.handshake 3
# no connection failed (step 0's was refused by the listener: skiff was not serving yet)
check_stat "cluster.$CLUSTER.upstream_cx_connect_fail" 0

kill -TERM "$SKIFF_PID"
if wait_exit "$SKIFF_PID" 5; then
	check_eq "skiff exits cleanly" "$EXIT_CODE" 0
else
	_t_fail "skiff exits" "still running after SIGTERM"
fi
summary
