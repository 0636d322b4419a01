#!/usr/bin/env bash
# Mutual TLS on the L4 path, end to end on loopback, with certificates from static config
# (filename, inline_string and inline_bytes DataSources) issued at test time by
# tests/tls/ca.sh into $TMP (no key is ever committed):
#   (a) upstream TLS: tcp_proxy -> a cluster with an UpstreamTlsContext -> `openssl s_server`
#       requiring a client certificate; a wrong expected SAN is refused (ssl.fail_verify_san);
#   (b) downstream TLS: a chain with a DownstreamTlsContext (require_client_certificate) ->
#       tcp_proxy -> a plain echo upstream; `openssl s_client` with the mesh's certificate
#       works, without one (fail_verify_no_cert) or with a foreign CA's (fail_verify_error)
#       it does not;
#   (c) both: a client sidecar listener -> tlsMode-istio endpoint -> a server sidecar
#       listener (tls_inspector, chain matched on "tls") -> the app, with Istio's SPIFFE
#       identities, SNI and ALPN.
# Every wait is bounded (timeout(1) around each openssl and python client).
. "$(dirname "$0")/lib.sh"

require_tools curl jq python3 openssl base64 || {
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
		bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" workload foreign default client --ca other
} >"$TMP/ca.log" 2>&1; then
	_t_fail "test CA" "$(tail -n 5 "$TMP/ca.log")"
	summary
	exit 1
fi

# ---------------------------------------------------------------------------------------
# a plain echo upstream and a line client (python, every socket operation with a timeout)

cat >"$TMP/tlsh.py" <<'PY'
import os, socket, sys, threading, time

def _echo(c):
    try:
        c.settimeout(10)
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

def line(port, msg, timeout=3):
    """Sends msg + newline, prints the first line back, else CLOSED / RESET / TIMEOUT / REFUSED."""
    try:
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=timeout)
    except OSError:
        return "REFUSED"
    s.settimeout(timeout)
    buf = b""
    try:
        s.sendall(msg.encode() + b"\n")
        while b"\n" not in buf:
            d = s.recv(65536)
            if not d:
                return "CLOSED" + (" " + buf.decode(errors="replace") if buf else "")
            buf += d
    except socket.timeout:
        return "TIMEOUT"
    except OSError:
        return "RESET"
    finally:
        s.close()
    return buf.split(b"\n")[0].decode(errors="replace")

def bulk(port, n):
    """n bytes through an echo path, read back concurrently: 'OK' when all came back intact."""
    import hashlib
    data = os.urandom(n)
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    got = bytearray()
    def reader():
        s.settimeout(10)
        while len(got) < n:
            try:
                d = s.recv(1 << 20)
            except OSError:
                return
            if not d:
                return
            got.extend(d)
    t = threading.Thread(target=reader)
    t.start()
    s.sendall(data)
    t.join(20)
    s.close()
    return "OK" if bytes(got) == data else "BAD %d of %d" % (len(got), n)

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(args[0], args[1])
    elif cmd == "line":
        print(line(args[0], args[1]))
    elif cmd == "bulk":
        print(bulk(args[0], int(args[1])))
PY
tlsh() { timeout 30 "$PYTHON3" "$TMP/tlsh.py" "$@"; }

start_echo() { # PORT
	local ready="$TMP/echo.$1.ready" i
	"$PYTHON3" "$TMP/tlsh.py" serve "$ready" "$1" >"$TMP/echo.$1.log" 2>&1 &
	_TLS_PIDS+=($!)
	for i in $(seq 100); do
		[ -e "$ready" ] && return 0
		sleep 0.03
	done
	_t_fail "echo upstream on $1" "not listening after 3 s"
	return 1
}

# `openssl s_server -rev` answers each line reversed; -Verify 1 requires a client certificate.
start_s_server() { # PORT CERT-NAME
	local i
	openssl s_server -accept "127.0.0.1:$1" -cert "$PKI/$2-chain.crt" -key "$PKI/$2.key" \
		-CAfile "$PKI/root.crt" -Verify 1 -verify_return_error -rev -quiet \
		>"$TMP/s_server.$1.log" 2>&1 &
	_TLS_PIDS+=($!)
	for i in $(seq 100); do
		timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
		sleep 0.05
	done
	_t_fail "s_server on $1" "not listening after 5 s: $(cat "$TMP/s_server.$1.log")"
	return 1
}

# s_client PORT MSG [ARGS...]: one line over TLS to skiff, prints what came back (bounded).
s_client() {
	local port=$1 msg=$2
	shift 2
	(
		printf '%s\n' "$msg"
		sleep 1
	) | timeout 5 openssl s_client -connect "127.0.0.1:$port" -CAfile "$PKI/root.crt" -quiet "$@" 2>"$TMP/s_client.err"
}

# ---------------------------------------------------------------------------------------
# JSON pieces

UP_CTX=type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
DOWN_CTX=type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext

file_ds() { echo "{\"filename\":\"$1\"}"; }
string_ds() { jq -Rs '{inline_string: .}' <"$1" | jq -c .; }
bytes_ds() { echo "{\"inline_bytes\":\"$(base64 -w0 <"$1")\"}"; }

# upstream_ts CERT-DS KEY-DS CA-DS SAN [EXTRA]: an UpstreamTlsContext transport socket.
upstream_ts() {
	echo "{\"name\":\"envoy.transport_sockets.tls\",\"typed_config\":{\"@type\":\"$UP_CTX\"${5:+,$5},
  \"common_tls_context\":{\"tls_certificates\":[{\"certificate_chain\":$1,\"private_key\":$2}],
  \"validation_context\":{\"trusted_ca\":$3,\"match_subject_alt_names\":[{\"exact\":\"$4\"}]}}}}"
}

# downstream_ts CERT-DS KEY-DS CA-DS [VALIDATION-EXTRA]: require_client_certificate.
downstream_ts() {
	echo "{\"name\":\"envoy.transport_sockets.tls\",\"typed_config\":{\"@type\":\"$DOWN_CTX\",
  \"require_client_certificate\":true,
  \"common_tls_context\":{\"tls_certificates\":[{\"certificate_chain\":$1,\"private_key\":$2}],
  \"validation_context\":{\"trusted_ca\":$3${4:+,$4}}}}}"
}

# cluster_ts NAME PORT TRANSPORT-SOCKET: a STATIC cluster whose transport_socket is TLS.
cluster_ts() {
	echo "{\"name\":\"$1\",\"type\":\"STATIC\",\"connect_timeout\":\"2s\",\"transport_socket\":$3,
  \"load_assignment\":{\"cluster_name\":\"$1\",\"endpoints\":[{\"lb_endpoints\":[
  {\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$2}}}}]}]}}"
}

plain_cluster() { # NAME PORT
	echo "{\"name\":\"$1\",\"type\":\"STATIC\",\"connect_timeout\":\"2s\",
  \"load_assignment\":{\"cluster_name\":\"$1\",\"endpoints\":[{\"lb_endpoints\":[
  {\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$2}}}}]}]}}"
}

tcp_filter() { # STAT-PREFIX CLUSTER [EXTRA]
	echo "{\"name\":\"envoy.filters.network.tcp_proxy\",\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\",\"stat_prefix\":\"$1\",\"cluster\":\"$2\"${3:+,$3}}}"
}

access_log() { # PATH FORMAT: a tcp_proxy access_log field
	echo "\"access_log\":[{\"name\":\"envoy.access_loggers.file\",\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\",\"path\":\"$1\",\"log_format\":{\"text_format_source\":{\"inline_string\":\"$2\\n\"}}}}]"
}

# listener NAME PORT STAT-PREFIX CHAINS [EXTRA]
listener() {
	echo "{\"name\":\"$1\",\"stat_prefix\":\"$3\",\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$2}}${5:+,$5},\"filter_chains\":[$4]}"
}

# boot NAME CLUSTERS LISTENERS: skiff --concurrency 2 with admin on $ADMIN.
boot() {
	local name=$1
	ports ADMIN || return 1
	cat >"$TMP/$name.json" <<EOF
{"node": {"id": "tls-$name", "cluster": "tls"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $ADMIN}}},
 "static_resources": {"clusters": [$2], "listeners": [$3]}}
EOF
	if ! jq -e . "$TMP/$name.json" >/dev/null; then
		_t_fail "$name: bootstrap" "invalid JSON: $(head -c 600 "$TMP/$name.json")"
		return 1
	fi
	start_skiff -c "$name.json" --concurrency 2
	if ! wait_admin "$ADMIN" || ! wait_live "$ADMIN" 5; then
		_t_fail "$name: startup" "not LIVE; log: $(tail -n 20 "$SKIFF_LOG")"
		return 1
	fi
}

# ---------------------------------------------------------------------------------------
# (a) upstream TLS to openssl s_server

CASE=upstream
ports P_SS L_GOOD L_BAD L_WAIT L_INSP
HTTP_INSP='{"name":"envoy.filters.listener.http_inspector","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"}}'
if start_s_server "$P_SS" server; then
	good=$(upstream_ts "$(file_ds "$PKI/client-chain.crt")" "$(file_ds "$PKI/client.key")" \
		"$(file_ds "$PKI/root.crt")" "$TD/ns/default/sa/server" \
		"\"sni\":\"outbound_.${P_SS}_._.server.default.svc.cluster.local\"")
	bad=$(upstream_ts "$(file_ds "$PKI/client-chain.crt")" "$(file_ds "$PKI/client.key")" \
		"$(file_ds "$PKI/root.crt")" "$TD/ns/default/sa/someone-else")
	sds="{\"name\":\"envoy.transport_sockets.tls\",\"typed_config\":{\"@type\":\"$UP_CTX\",
  \"common_tls_context\":{\"tls_certificate_sds_secret_configs\":[{\"name\":\"default\",
  \"sds_config\":{\"ads\":{},\"resource_api_version\":\"V3\",\"initial_fetch_timeout\":\"0.5s\"}}]}}}"
	if boot upstream "$(cluster_ts good "$P_SS" "$good"),$(cluster_ts bad "$P_SS" "$bad"),$(cluster_ts wait "$P_SS" "$sds")" \
		"$(listener good "$L_GOOD" good "{\"filters\":[$(tcp_filter good good)]}"),$(listener bad "$L_BAD" bad "{\"filters\":[$(tcp_filter bad bad)]}"),$(listener wait "$L_WAIT" wait "{\"filters\":[$(tcp_filter wait wait)]}"),$(listener insp "$L_INSP" insp "{\"filters\":[$(tcp_filter insp good)]}" "\"listener_filters\":[$HTTP_INSP]")"; then
		check_eq "$CASE: a line goes through TLS to s_server and back" "$(tlsh line "$L_GOOD" hello-upstream)" \
			"maertspu-olleh"
		check_eq "$CASE: a second connection works too" "$(tlsh line "$L_GOOD" abc)" "cba"
		check_eq "$CASE: bytes the http_inspector read go first, through TLS" "$(tlsh line "$L_INSP" not-http)" \
			"ptth-ton"
		check_stat cluster.good.ssl.handshake 3
		check_stat cluster.good.upstream_cx_connect_fail 0
		r=$(tlsh line "$L_BAD" hello)
		check_match "$CASE: a wrong expected SAN closes the downstream ($r)" "$r" '^(CLOSED|RESET)$'
		check_stat cluster.bad.ssl.fail_verify_san 1
		check_stat cluster.bad.upstream_cx_connect_fail 1
		check_stat cluster.bad.ssl.handshake 0
		r=$(tlsh line "$L_WAIT" hello)
		check_match "$CASE: a socket waiting for SDS refuses, never sends in clear ($r)" "$r" '^(CLOSED|RESET)$'
		check_contains "$CASE: the wait for SDS is logged" "$(cat "$SKIFF_LOG")" "whose certificates wait for SDS"
		check_eq "$CASE: s_server still serves after the failures" "$(tlsh line "$L_GOOD" xyz)" "zyx"
		stop_skiff
	fi
fi

# ---------------------------------------------------------------------------------------
# (b) downstream TLS terminated by skiff, plain echo upstream

CASE=downstream
ports P_ECHO L_DOWN
if start_echo "$P_ECHO"; then
	ts=$(downstream_ts "$(file_ds "$PKI/server-chain.crt")" "$(file_ds "$PKI/server.key")" \
		"$(string_ds "$PKI/root.crt")")
	if boot downstream "$(plain_cluster app "$P_ECHO")" \
		"$(listener down "$L_DOWN" down "{\"transport_socket\":$ts,\"filters\":[$(tcp_filter down app)]}")"; then
		out=$(s_client "$L_DOWN" ping-with-cert -cert "$PKI/client-chain.crt" -key "$PKI/client.key")
		check_eq "$CASE: s_client with a mesh certificate gets its line echoed" "$out" "ping-with-cert"
		check_stat listener.down.ssl.handshake 1
		check_stat tcp.down.downstream_cx_total 1
		out=$(s_client "$L_DOWN" ping-without-cert)
		check_not_contains "$CASE: without a client certificate nothing is echoed" "$out" "ping-without-cert"
		check_stat listener.down.ssl.fail_verify_no_cert 1
		out=$(s_client "$L_DOWN" ping-foreign -cert "$PKI/foreign-chain.crt" -key "$PKI/foreign.key")
		check_not_contains "$CASE: a foreign CA's certificate is refused" "$out" "ping-foreign"
		check_stat listener.down.ssl.fail_verify_error 1
		check_stat listener.down.ssl.handshake 1
		stop_skiff
	fi
fi

# ---------------------------------------------------------------------------------------
# (c) client sidecar -> server sidecar mutual TLS with Istio's identities (one skiff, two
#     listeners: outbound plain -> tlsMode-istio endpoint -> inbound TLS chain -> app)

CASE=sidecars
ports P_APP L_OUT L_IN
if start_echo "$P_APP"; then
	sni="outbound_.${L_IN}_._.server.default.svc.cluster.local"
	# Istio's UpstreamTlsContext: SNI, ALPN, TLS 1.2-1.3 (certificate inline, not by SDS)
	up=$(jq -c --arg sni "$sni" '.typed_config.sni = $sni |
		.typed_config.common_tls_context.alpn_protocols = ["istio-peer-exchange", "istio"] |
		.typed_config.common_tls_context.tls_params = {tls_minimum_protocol_version: "TLSv1_2", tls_maximum_protocol_version: "TLSv1_3"}' \
		<<<"$(upstream_ts "$(bytes_ds "$PKI/client-chain.crt")" "$(string_ds "$PKI/client.key")" \
			"$(file_ds "$PKI/root.crt")" "$TD/ns/default/sa/server")")
	outbound="{\"name\":\"outbound|$L_IN||server.default.svc.cluster.local\",\"type\":\"STATIC\",\"connect_timeout\":\"2s\",
  \"transport_socket_matches\":[{\"name\":\"tlsMode-istio\",\"match\":{\"tlsMode\":\"istio\"},\"transport_socket\":$up},
    {\"name\":\"tlsMode-disabled\",\"match\":{},\"transport_socket\":{\"name\":\"envoy.transport_sockets.raw_buffer\"}}],
  \"load_assignment\":{\"cluster_name\":\"x\",\"endpoints\":[{\"lb_endpoints\":[
  {\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$L_IN}}},
   \"metadata\":{\"filter_metadata\":{\"envoy.transport_socket_match\":{\"tlsMode\":\"istio\"}}}}]}]}}"
	down=$(downstream_ts "$(file_ds "$PKI/server-chain.crt")" "$(file_ds "$PKI/server.key")" \
		"$(file_ds "$PKI/root.crt")" "\"match_subject_alt_names\":[{\"prefix\":\"$TD/\"}]")
	down=$(jq -c '.typed_config.common_tls_context.alpn_protocols = ["h2", "http/1.1"]' <<<"$down")
	inspector="\"listener_filters\":[{\"name\":\"envoy.filters.listener.tls_inspector\",\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector\"}}]"
	inbound_chains="{\"filter_chain_match\":{\"transport_protocol\":\"tls\"},\"transport_socket\":$down,\"filters\":[$(tcp_filter inbound_tls "inbound|$P_APP||" "$(access_log "$TMP/in.log" "%DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_TLS_VERSION% %REQUESTED_SERVER_NAME%")")]},
  {\"filter_chain_match\":{\"transport_protocol\":\"raw_buffer\"},\"filters\":[$(tcp_filter inbound_plain none)]}"
	if boot sidecars "$outbound,$(plain_cluster "inbound|$P_APP||" "$P_APP")" \
		"$(listener outbound "$L_OUT" outbound "{\"filters\":[$(tcp_filter outbound "outbound|$L_IN||server.default.svc.cluster.local" "$(access_log "$TMP/out.log" "%UPSTREAM_PEER_URI_SAN% %UPSTREAM_TLS_VERSION%")")]}"),$(listener inbound "$L_IN" inbound "$inbound_chains" "$inspector")"; then
		check_eq "$CASE: a line crosses client sidecar -> mTLS -> server sidecar -> app and back" \
			"$(tlsh line "$L_OUT" over-mtls)" "over-mtls"
		check_eq "$CASE: 3 MiB both ways intact" "$(tlsh bulk "$L_OUT" 3145728)" "OK"
		check_stat "cluster.outbound|$L_IN||server.default.svc.cluster.local.ssl.handshake" 2
		check_stat listener.inbound.ssl.handshake 2
		check_stat listener.inbound.ssl.no_certificate 0
		check_stat tcp.inbound_tls.downstream_cx_total 2
		check_stat tcp.inbound_plain.downstream_cx_total 0
		check_eq "$CASE: the server side logs the client's identity, version and SNI" \
			"$(head -n 1 "$TMP/in.log" 2>/dev/null)" "$TD/ns/default/sa/client TLSv1.3 $sni"
		check_eq "$CASE: the client side logs the server's identity" \
			"$(head -n 1 "$TMP/out.log" 2>/dev/null)" "$TD/ns/default/sa/server TLSv1.3"
		stop_skiff
	fi
fi

summary
