#!/usr/bin/env bash
# What a TLS client or scanner sees at skiff's inbound port in Istio's shapes, with
# certificates issued at test time by tests/tls/ca.sh into $TMP (no key is ever committed):
#   STRICT      tls_inspector; one chain matched on transport_protocol "tls" with a
#               DownstreamTlsContext as istiod writes it (require_client_certificate, ALPN
#               h2,http/1.1, TLS 1.2-1.3, SAN prefix spiffe://cluster.local/) -> tcp_proxy ->
#               a plain echo app. `openssl s_client` sees TLS 1.3, ALPN h2, the server's
#               SPIFFE chain, a verified peer; TLS 1.2 works; TLS 1.1 and 1.0 are refused;
#               sslscan finds no old protocol and no weak cipher; a plaintext client never
#               reaches the app.
#   PERMISSIVE  the same TLS chain plus a "raw_buffer" chain (plain tcp_proxy): an mTLS
#               client and a plaintext client both reach the app.
# sslscan is optional (Debian package sslscan): without it those checks are skipped.
# Every wait is bounded (timeout(1) around each openssl, sslscan and python client).
. "$(dirname "$0")/lib.sh"

require_tools curl jq python3 openssl || {
	summary
	exit 1
}
[ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3

_SCAN_PIDS=()
_scan_cleanup() {
	local rc=$? pid
	for pid in "${_SCAN_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	(exit "$rc")
	_t_cleanup
}
trap _scan_cleanup EXIT

PKI=$TMP/pki
TD=spiffe://cluster.local
if ! {
	bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" ca &&
		bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" workload server default server &&
		bash "$SKIFF_SRC/tests/tls/ca.sh" "$PKI" workload client default client
} >"$TMP/ca.log" 2>&1; then
	_t_fail "test CA" "$(tail -n 5 "$TMP/ca.log")"
	summary
	exit 1
fi
CLIENT_CERT=(-cert "$PKI/client-chain.crt" -key "$PKI/client.key" -CAfile "$PKI/root.crt")

# ---------------------------------------------------------------------------------------
# the app: an echo server that also counts what it received (accepted connections and
# bytes, written to FILE after every change) so a test can tell that nothing arrived

cat >"$TMP/app.py" <<'PY'
import os, socket, sys, threading, time

ready, port, counts = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lock, state = threading.Lock(), {"conns": 0, "bytes": 0}

def note(conns=0, n=0):
    with lock:
        state["conns"] += conns
        state["bytes"] += n
        with open(counts + ".tmp", "w") as f:
            f.write("%d %d\n" % (state["conns"], state["bytes"]))
        os.replace(counts + ".tmp", counts)

def echo(c):
    note(conns=1)
    try:
        c.settimeout(10)
        while True:
            d = c.recv(65536)
            if not d:
                break
            note(n=len(d))
            c.sendall(d)
    except OSError:
        pass
    finally:
        c.close()

ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(128)
note()
def loop():
    while True:
        c, _ = ls.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
threading.Thread(target=loop, daemon=True).start()
open(ready, "w").close()
parent, deadline = os.getppid(), time.time() + 300
while os.getppid() == parent and time.time() < deadline:
    time.sleep(0.2)
PY

# plain PORT MSG: a plaintext client sends MSG and a newline; prints the first line back,
# else CLOSED / RESET / TIMEOUT / REFUSED (3 s at most).
plain() {
	timeout 10 "$PYTHON3" - "$1" "$2" <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
except OSError:
    print("REFUSED"); sys.exit()
s.settimeout(3)
buf = b""
try:
    s.sendall(sys.argv[2].encode() + b"\n")
    while b"\n" not in buf:
        d = s.recv(65536)
        if not d:
            print("CLOSED" + (" " + buf.decode(errors="replace") if buf else "")); sys.exit()
        buf += d
except socket.timeout:
    print("TIMEOUT"); sys.exit()
except OSError:
    print("RESET"); sys.exit()
print(buf.split(b"\n")[0].decode(errors="replace"))
PY
}

wait_port() { # PORT: something accepts there (5 s at most)
	local i
	for i in $(seq 100); do
		timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

start_app() { # PORT
	local ready="$TMP/app.$1.ready" i
	"$PYTHON3" "$TMP/app.py" "$ready" "$1" "$TMP/app.$1.counts" >"$TMP/app.$1.log" 2>&1 &
	_SCAN_PIDS+=($!)
	for i in $(seq 100); do
		[ -e "$ready" ] && return 0
		sleep 0.03
	done
	_t_fail "app on $1" "not listening after 3 s: $(cat "$TMP/app.$1.log")"
	return 1
}
app_counts() { cat "$TMP/app.$1.counts" 2>/dev/null || echo "none"; } # PORT -> "CONNS BYTES"

# s_client PORT MSG [ARGS...]: a full s_client session (handshake report, MSG sent and its
# echo), stdout and stderr together. Without -ign_eof s_client drops what it read from a
# pipe when the pipe ends, so it runs until timeout(1) stops it after 3 s (or the server
# closes).
s_client() {
	local port=$1 msg=$2
	shift 2
	(
		printf '%s\n' "$msg"
		sleep 2
	) | timeout 3 openssl s_client -connect "127.0.0.1:$port" -ign_eof "$@" 2>&1
}

# The handshake report of s_client: "Protocol : TLSv1.3" (OpenSSL 3 writes "Protocol  :").
proto_of() { sed -n 's/^ *Protocol *: *//p' <<<"$1" | head -n 1; }
handshake_done() { grep -qE '^(New|Reused), TLSv' <<<"$1"; } # any cipher negotiated

# ---------------------------------------------------------------------------------------
# skiff: one process, a STRICT and a PERMISSIVE inbound listener

DOWN_CTX=type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
ports ADMIN P_APP L_STRICT L_PERM P_CONTROL
start_app "$P_APP" || {
	summary
	exit 1
}

# istiod's inbound DownstreamTlsContext (certificates from files instead of SDS)
down="{\"name\":\"envoy.transport_sockets.tls\",\"typed_config\":{\"@type\":\"$DOWN_CTX\",
  \"require_client_certificate\":true,
  \"common_tls_context\":{
    \"tls_params\":{\"tls_minimum_protocol_version\":\"TLSv1_2\",\"tls_maximum_protocol_version\":\"TLSv1_3\"},
    \"alpn_protocols\":[\"h2\",\"http/1.1\"],
    \"tls_certificates\":[{\"certificate_chain\":{\"filename\":\"$PKI/server-chain.crt\"},
                          \"private_key\":{\"filename\":\"$PKI/server.key\"}}],
    \"validation_context\":{\"trusted_ca\":{\"filename\":\"$PKI/root.crt\"},
                          \"match_subject_alt_names\":[{\"prefix\":\"$TD/\"}]}}}}"
tcp() { # STAT-PREFIX
	echo "{\"name\":\"envoy.filters.network.tcp_proxy\",\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\",\"stat_prefix\":\"$1\",\"cluster\":\"inbound|$P_APP||\"}}"
}
inspector="{\"name\":\"envoy.filters.listener.tls_inspector\",\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector\"}}"
tls_chain() { # STAT-PREFIX
	echo "{\"name\":\"$1-tls\",\"filter_chain_match\":{\"transport_protocol\":\"tls\"},\"transport_socket\":$down,\"filters\":[$(tcp "$1_tls")]}"
}
listener() { # NAME PORT CHAINS
	echo "{\"name\":\"$1\",\"stat_prefix\":\"$1\",\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$2}},
  \"listener_filters\":[$inspector],\"filter_chains\":[$3]}"
}
cat >"$TMP/scan.json" <<EOF
{"node": {"id": "tls-scan", "cluster": "tls"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $ADMIN}}},
 "static_resources": {
  "clusters": [{"name": "inbound|$P_APP||", "type": "STATIC", "connect_timeout": "2s",
    "load_assignment": {"cluster_name": "app", "endpoints": [{"lb_endpoints": [
      {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $P_APP}}}}]}]}}],
  "listeners": [
    $(listener strict "$L_STRICT" "$(tls_chain strict)"),
    $(listener permissive "$L_PERM" "$(tls_chain permissive),
      {\"name\":\"permissive-plain\",\"filter_chain_match\":{\"transport_protocol\":\"raw_buffer\"},\"filters\":[$(tcp permissive_plain)]}")
  ]}}
EOF
if ! jq -e . "$TMP/scan.json" >/dev/null; then
	_t_fail "bootstrap" "invalid JSON: $(head -c 600 "$TMP/scan.json")"
	summary
	exit 1
fi
start_skiff -c scan.json --concurrency 2
if ! wait_admin "$ADMIN" || ! wait_port "$L_STRICT"; then
	_t_fail "startup" "skiff is not serving; log: $(tail -n 20 "$SKIFF_LOG")"
	summary
	exit 1
fi

# ---------------------------------------------------------------------------------------
# STRICT: what openssl s_client sees

CASE=strict
out=$(s_client "$L_STRICT" hello-h2 -alpn h2 -showcerts "${CLIENT_CERT[@]}")
check_eq "$CASE: s_client negotiates TLSv1.3 by default" "$(proto_of "$out")" "TLSv1.3"
check_contains "$CASE: the server selects ALPN h2" "$out" "ALPN protocol: h2"
check_contains "$CASE: the server's chain verifies against the mesh root" "$out" "Verify return code: 0 (ok)"
check_match "$CASE: the app echoes the line sent over TLS" "$out" 'hello-h2$'
# -showcerts: the first PEM block is the leaf, the second its issuer (the chain SDS sends)
awk '/BEGIN CERTIFICATE/ { n++ } n == 1 { print } /END CERTIFICATE/ && n == 1 { exit }' <<<"$out" >"$TMP/leaf.pem"
san=$(openssl x509 -in "$TMP/leaf.pem" -noout -ext subjectAltName 2>&1)
check_contains "$CASE: the leaf carries the server's SPIFFE id as URI SAN" "$san" "URI:$TD/ns/default/sa/server"
check_eq "$CASE: the server sends leaf + issuer" "$(grep -c 'BEGIN CERTIFICATE' <<<"$out")" 2
check_match "$CASE: the issuer in the chain is the test root" "$out" '^ *1 s:.*CN *= *root CA'

out=$(s_client "$L_STRICT" hello-http11 -alpn http/1.1 "${CLIENT_CERT[@]}")
check_contains "$CASE: ALPN http/1.1 is selected when offered alone" "$out" "ALPN protocol: http/1.1"

out=$(s_client "$L_STRICT" hello-12 -tls1_2 -alpn h2 "${CLIENT_CERT[@]}")
check_eq "$CASE: -tls1_2 negotiates TLSv1.2" "$(proto_of "$out")" "TLSv1.2"
check_match "$CASE: the app echoes the line over TLS 1.2" "$out" 'hello-12$'
check_contains "$CASE: TLS 1.2 verifies too" "$out" "Verify return code: 0 (ok)"

# OpenSSL 3 refuses TLS < 1.2 itself at security level >= 1: the client lowers it to 0 so
# that it really offers TLS 1.1 / 1.0, and a control server that allows them proves it does.
old_client=(-cipher 'DEFAULT:@SECLEVEL=0' "${CLIENT_CERT[@]}")
openssl s_server -accept "127.0.0.1:$P_CONTROL" -cert "$PKI/server-chain.crt" -key "$PKI/server.key" \
	-cipher 'DEFAULT:@SECLEVEL=0' -min_protocol TLSv1 -max_protocol TLSv1.1 -rev -quiet \
	>"$TMP/control.log" 2>&1 &
_SCAN_PIDS+=($!)
if wait_port "$P_CONTROL"; then
	for v in tls1_1 tls1; do
		out=$(s_client "$P_CONTROL" x "-$v" "${old_client[@]}")
		if handshake_done "$out"; then
			_t_ok "control: the -$v client completes a handshake where $v is allowed"
		else
			_t_fail "control: the -$v client completes a handshake where $v is allowed" "$out"
		fi
	done
else
	_t_fail "control: s_server allowing TLS 1.0-1.1" "not listening: $(cat "$TMP/control.log")"
fi
for v in tls1_1 tls1; do
	c0=$(app_counts "$P_APP")
	out=$(s_client "$L_STRICT" "old-$v" "-$v" "${old_client[@]}")
	if handshake_done "$out"; then
		_t_fail "$CASE: -$v is refused (no handshake)" "$out"
	else
		_t_ok "$CASE: -$v is refused (no handshake)"
	fi
	check_eq "$CASE: -$v never reaches the app" "$(app_counts "$P_APP")" "$c0"
done

# ---------------------------------------------------------------------------------------
# STRICT: sslscan

# sslscan_check NAME OUTPUT: protocols and accepted ciphers as an Istio inbound must have.
sslscan_check() {
	local name=$1 out=$2 v state weak accepted
	for v in SSLv2 SSLv3 TLSv1.0 TLSv1.1; do
		state=$(awk -v v="$v" '$1 == v { print $2; exit }' <<<"$out")
		check_eq "$name: $v disabled" "$state" "disabled"
	done
	for v in TLSv1.2 TLSv1.3; do
		state=$(awk -v v="$v" '$1 == v { print $2; exit }' <<<"$out")
		check_eq "$name: $v enabled" "$state" "enabled"
	done
	# "Preferred|Accepted  TLSv1.3  128 bits  TLS_AES_128_GCM_SHA256 ..."
	accepted=$(awk '($1 == "Preferred" || $1 == "Accepted") && $4 == "bits" { print $2, $3, $5 }' <<<"$out")
	if [ -z "$accepted" ]; then
		_t_fail "$name: sslscan lists accepted ciphers" "none in: $out"
		return
	fi
	_t_ok "$name: sslscan lists accepted ciphers ($(wc -l <<<"$accepted"))"
	weak=$(awk '$2 + 0 < 128 || toupper($3) ~ /RC4|DES|NULL|EXP|ANON|ADH|AECDH|MD5/' <<<"$accepted")
	check_eq "$name: no accepted cipher is weak (RC4, DES/3DES, NULL, EXPORT, anon, MD5, < 128 bits)" "$weak" ""
	check_all_lines "$name: every accepted cipher is TLS 1.2 or 1.3" "$accepted" '^TLSv1\.[23] '
	check_match "$name: a TLS 1.2 cipher is accepted" "$accepted" '^TLSv1\.2 '
	check_match "$name: a TLS 1.3 cipher is accepted" "$accepted" '^TLSv1\.3 '
}

if command -v sslscan >/dev/null 2>&1; then
	# With the client certificate: each cipher probe completes its handshake.
	scan=$(timeout 120 sslscan --no-colour --certs="$PKI/client-chain.crt" --pk="$PKI/client.key" \
		"127.0.0.1:$L_STRICT" 2>&1)
	printf '%s\n' "$scan" >"$TMP/sslscan.certs.log"
	sslscan_check "$CASE: sslscan with the client certificate" "$scan"
	# Without one: the protocol scan still works (the server answers up to its
	# CertificateRequest). sslscan 2.0.7 then lists only TLS 1.3 ciphers (its client sees
	# the handshake end before the server refuses the missing certificate); in TLS 1.2 the
	# server refuses before the client's Finished, so no TLS 1.2 cipher shows as accepted.
	scan=$(timeout 120 sslscan --no-colour "127.0.0.1:$L_STRICT" 2>&1)
	printf '%s\n' "$scan" >"$TMP/sslscan.nocert.log"
	for v in SSLv2 SSLv3 TLSv1.0 TLSv1.1 TLSv1.2 TLSv1.3; do
		state=$(awk -v v="$v" '$1 == v { print $2; exit }' <<<"$scan")
		case $v in TLSv1.[23]) want=enabled ;; *) want=disabled ;; esac
		check_eq "$CASE: sslscan without a certificate: $v $want" "$state" "$want"
	done
	weak=$(awk '($1 == "Preferred" || $1 == "Accepted") && $4 == "bits" && ($3 + 0 < 128 || toupper($5) ~ /RC4|DES|NULL|EXP|ANON|ADH|AECDH|MD5/ || $2 !~ /^TLSv1\.[23]$/)' <<<"$scan")
	check_eq "$CASE: sslscan without a certificate: nothing weak or old accepted" "$weak" ""
else
	skip "$CASE: sslscan" "sslscan is not installed (apt-get install -y sslscan)"
fi

# ---------------------------------------------------------------------------------------
# STRICT: a plaintext client

c0=$(app_counts "$P_APP")
nm0=$(stat listener.strict.no_filter_chain_match)
r=$(plain "$L_STRICT" "GET / HTTP/1.1")
check_match "$CASE: a plaintext client is closed ($r)" "$r" '^(CLOSED|RESET)$'
r=$(plain "$L_STRICT" "plain-bytes-to-strict")
check_match "$CASE: a second plaintext client is closed too ($r)" "$r" '^(CLOSED|RESET)$'
sleep 0.2
check_eq "$CASE: the app saw no connection and no byte from plaintext clients" "$(app_counts "$P_APP")" "$c0"
check_stat listener.strict.no_filter_chain_match "$((nm0 + 2))"

# ---------------------------------------------------------------------------------------
# PERMISSIVE: TLS and plaintext on one port

CASE=permissive
c0=$(app_counts "$P_APP")
out=$(s_client "$L_PERM" hello-mtls -alpn h2 "${CLIENT_CERT[@]}")
check_match "$CASE: an mTLS client's line reaches the app and comes back" "$out" 'hello-mtls$'
check_eq "$CASE: the mTLS client negotiated TLSv1.3" "$(proto_of "$out")" "TLSv1.3"
check_contains "$CASE: ALPN h2 on the permissive port too" "$out" "ALPN protocol: h2"
check_eq "$CASE: a plaintext client's line reaches the app and comes back" \
	"$(plain "$L_PERM" hello-plain)" "hello-plain"
read -r n0 b0 <<<"$c0"
read -r n1 b1 <<<"$(app_counts "$P_APP")"
check_eq "$CASE: the app accepted two connections" "$((n1 - n0))" 2
check_eq "$CASE: the app received both lines in clear (11 + 12 bytes)" "$((b1 - b0))" 23
check_stat tcp.permissive_tls.downstream_cx_total 1
check_stat tcp.permissive_plain.downstream_cx_total 1
out=$(s_client "$L_PERM" nocert-line-7 -alpn h2 -CAfile "$PKI/root.crt")
check_not_contains "$CASE: TLS without a client certificate is still refused" "$out" nocert-line-7

summary
