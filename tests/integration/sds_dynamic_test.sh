#!/usr/bin/env bash
# SDS secrets named by dynamic (CDS / LDS) clusters and listeners, end to end on loopback, in
# Istio's shapes: the bootstrap names no secret (as pilot-agent's); the test xDS server
# (build/xds/server/skiff-xds-server) on a unix socket is both the ADS server (`xds-grpc`) and
# pilot-agent's SDS server (`sds-grpc`); certificates from tests/tls/ca.sh. One skiff runs
# both sidecars: outbound listener (plain) -> cluster with a tlsMode-istio UpstreamTlsContext
# (SDS default + ROOTCA) -> inbound listener (DownstreamTlsContext, SDS default + ROOTCA,
# require_client_certificate) -> echo app. As in Envoy:
#   0. a plain probe listener and the app cluster: skiff is LIVE; SDS holds only ROOTCA
#   1. CDS adds the mTLS cluster, LDS the inbound listener (and one naming a secret that never
#      comes, initial_fetch_timeout 1s): `default` is subscribed (from dynamic resources
#      only), the cluster and the listener warm (stats, /config_dump), the warming
#      listener's port refuses connections, the other listener goes active at its timeout
#   2. `default` served: both go active; mTLS passes end to end; both SPIFFE ids logged
#   3. the inbound listener updated while its secrets exist: it never warms, traffic passes
#   4. SDS over ADS (sds_config `ads: {}`): secrets asked for on the ADS stream itself; a
#      second mTLS pair warms until they come, then passes; a bad secret is NACKed naming it,
#      and the previous version keeps serving
# All of it twice: ADS in SotW and in Delta (the SDS stream is SotW, as pilot-agent's).
# Every wait is bounded. SDS_DYNAMIC_KEEP=PREFIX keeps the logs.
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

CERTS="$TMP/certs"
SECRET_TYPE=type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
TD=spiffe://cluster.local

wait_line() { # FILE ERE SECONDS
	local i
	for i in $(seq $((${3:-5} * 20))); do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

if ! { bash "$CA" "$CERTS" ca &&
	bash "$CA" "$CERTS" workload w1 default workload --days 30 &&
	bash "$CA" "$CERTS" workload w2 default workload-ads --days 30; } >"$TMP/ca.log" 2>&1; then
	_t_fail "certificates" "tests/tls/ca.sh failed: $(tail -n 5 "$TMP/ca.log")"
	summary
	exit 1
fi

# secret NAME validation CA | secret NAME cert CHAIN KEY: one Secret resource (inline bytes)
secret() {
	if [ "$2" = validation ]; then
		jq -n --rawfile ca "$3" --arg t "$SECRET_TYPE" --arg n "$1" \
			'{"@type": $t, "name": $n, "validation_context": {"trusted_ca": {"inline_bytes": ($ca | @base64)}}}'
	else
		jq -n --rawfile chain "$3" --rawfile key "$4" --arg t "$SECRET_TYPE" --arg n "$1" \
			'{"@type": $t, "name": $n, "tls_certificate": {
			  "certificate_chain": {"inline_bytes": ($chain | @base64)},
			  "private_key": {"inline_bytes": ($key | @base64)}}}'
	fi
}
# write_secrets SECRET-JSON...: the secrets file, replaced atomically
write_secrets() {
	printf '%s\n' "$@" | jq -s . >"$SECRETS.tmp" && mv "$SECRETS.tmp" "$SECRETS"
}

# an echo upstream and a line client (python, every socket operation with a timeout)
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
    parent, deadline = os.getppid(), time.time() + 180
    while os.getppid() == parent and time.time() < deadline:
        time.sleep(0.2)

def line(port, msg):
    try:
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=3)
    except ConnectionRefusedError:
        return "REFUSED"
    except OSError as e:
        return "CONNECT-ERROR %s" % e
    s.settimeout(3)
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
    finally:
        s.close()
    return buf.split(b"\n")[0].decode(errors="replace")

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(args[0], args[1])
    elif cmd == "line":
        print(line(args[0], args[1]))
PY
pyh() { timeout 30 "$PYTHON3" "$TMP/h.py" "$@"; }

# until_line PORT MSG SECONDS: retries a line until it echoes
until_line() {
	local i r
	for i in $(seq $(($3 * 10))); do
		r=$(pyh line "$1" "$2")
		[ "$r" = "$2" ] && break
		sleep 0.1
	done
	echo "$r"
}

# until_jq SECONDS FILTER: polls /config_dump until the jq filter is true; prints true/false
until_jq() {
	local i
	for i in $(seq $(($1 * 10))); do
		if curl -s --max-time 3 "http://127.0.0.1:$ADMIN/config_dump" | jq -e "$2" >/dev/null 2>&1; then
			echo true
			return 0
		fi
		sleep 0.1
	done
	echo false
}

sds_ads() { # NAME: over the ADS stream
	echo "{\"name\":\"$1\",\"sds_config\":{\"ads\":{},\"initial_fetch_timeout\":\"0s\",\"resource_api_version\":\"V3\"}}"
}

ports P_APP
APP="inbound|$P_APP||"
C=type.googleapis.com/envoy.config.cluster.v3.Cluster
L=type.googleapis.com/envoy.config.listener.v3.Listener
TCP=type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
FILELOG=type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog

tcp_filter() { # STAT-PREFIX CLUSTER LOG FORMAT
	echo "{\"name\":\"envoy.filters.network.tcp_proxy\",\"typed_config\":{\"@type\":\"$TCP\",\"stat_prefix\":\"$1\",\"cluster\":\"$2\",
  \"access_log\":[{\"name\":\"envoy.access_loggers.file\",\"typed_config\":{\"@type\":\"$FILELOG\",\"path\":\"$3\",
  \"log_format\":{\"text_format_source\":{\"inline_string\":\"$4\\n\"}}}}]}}"
}
app_cluster() {
	echo "{\"@type\":\"$C\",\"name\":\"$APP\",\"type\":\"STATIC\",\"connect_timeout\":\"2s\",
  \"load_assignment\":{\"cluster_name\":\"$APP\",\"endpoints\":[{\"lb_endpoints\":[
   {\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$P_APP}}}}]}]}}"
}
mtls_cluster() { # NAME PORT SNI-HOST CERT-REF ROOT-REF: Istio's outbound cluster (tlsMode-istio match)
	echo "{\"@type\":\"$C\",\"name\":\"$1\",\"type\":\"STATIC\",\"connect_timeout\":\"2s\",
  \"load_assignment\":{\"cluster_name\":\"$1\",\"endpoints\":[{\"lb_endpoints\":[
   {\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$2}}},
    \"metadata\":{\"filter_metadata\":{\"envoy.transport_socket_match\":{\"tlsMode\":\"istio\"}}}}]}]},
  \"transport_socket_matches\":[
   {\"name\":\"tlsMode-istio\",\"match\":{\"tlsMode\":\"istio\"},
    \"transport_socket\":{\"name\":\"envoy.transport_sockets.tls\",\"typed_config\":{
     \"@type\":\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\",
     \"common_tls_context\":{
      \"tls_params\":{\"tls_minimum_protocol_version\":\"TLSv1_2\",\"tls_maximum_protocol_version\":\"TLSv1_3\"},
      \"alpn_protocols\":[\"istio-peer-exchange\",\"istio\"],
      \"tls_certificate_sds_secret_configs\":[$4],
      \"combined_validation_context\":{
       \"default_validation_context\":{\"match_subject_alt_names\":[{\"prefix\":\"$TD/ns/default/sa/\"}]},
       \"validation_context_sds_secret_config\":$5}},
     \"sni\":\"outbound_.$2_._.$3\"}}},
   {\"name\":\"tlsMode-disabled\",\"match\":{},
    \"transport_socket\":{\"name\":\"envoy.transport_sockets.raw_buffer\",\"typed_config\":{
     \"@type\":\"type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer\"}}}]}"
}
plain_listener() { # NAME PORT CLUSTER LOG FORMAT
	echo "{\"@type\":\"$L\",\"name\":\"$1\",\"stat_prefix\":\"$1\",
  \"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$2}},
  \"filter_chains\":[{\"filters\":[$(tcp_filter "$1" "$3" "$4" "$5")]}]}"
}
tls_listener() { # NAME PORT CERT-REF ROOT-REF LOG FORMAT: Istio's inbound mTLS chain
	echo "{\"@type\":\"$L\",\"name\":\"$1\",\"stat_prefix\":\"$1\",
  \"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$2}},
  \"listener_filters\":[{\"name\":\"envoy.filters.listener.tls_inspector\",\"typed_config\":{
    \"@type\":\"type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector\"}}],
  \"filter_chains\":[
   {\"name\":\"$1-mtls\",\"filter_chain_match\":{\"transport_protocol\":\"tls\"},
    \"transport_socket\":{\"name\":\"envoy.transport_sockets.tls\",\"typed_config\":{
     \"@type\":\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\",
     \"require_client_certificate\":true,
     \"common_tls_context\":{
      \"tls_params\":{\"tls_minimum_protocol_version\":\"TLSv1_2\",\"tls_maximum_protocol_version\":\"TLSv1_3\"},
      \"alpn_protocols\":[\"h2\",\"http/1.1\"],
      \"tls_certificate_sds_secret_configs\":[$3],
      \"combined_validation_context\":{
       \"default_validation_context\":{\"match_subject_alt_names\":[{\"prefix\":\"$TD/\"}]},
       \"validation_context_sds_secret_config\":$4}}}},
    \"filters\":[$(tcp_filter "$1" "$APP" "$5" "$6")]}]}"
}
# write_resources RESOURCE-JSON...: the ADS resources file, replaced atomically
write_resources() {
	printf '%s\n' "$@" | jq -s . >"$RES.tmp" && mv "$RES.tmp" "$RES"
}
push() { kill -HUP "$SERVER_PID"; }


READY="$TMP/echo.ready"
"$PYTHON3" "$TMP/h.py" serve "$READY" "$P_APP" >"$TMP/echo.log" 2>&1 &
_T_PIDS+=($!)
for i in $(seq 100); do
	[ -e "$READY" ] && break
	sleep 0.03
done

# run_mode NAME API_TYPE: the whole story with ADS in this mode (the SDS stream is SotW, as
# pilot-agent's); its own skiff, server, ports and files.
run_mode() {
	M=$1
	D="$TMP/$1"
	mkdir -p "$D"
	SOCK="$D/xds.sock"
	SLOG="$D/server.log"
	SECRETS="$D/secrets.json"
	RES="$D/resources.json"
	ports L_PROBE L_OUT L_IN L_NEVER L_OUT2 L_IN2 || return 1
	ADMIN=$(free_port)
	CLUSTER="outbound|$L_IN||server.default.svc.cluster.local"
	CLUSTER2="outbound|$L_IN2||server-ads.default.svc.cluster.local"
	cat >"$D/boot.json" <<EOF
{"node": {"id": "sidecar~127.0.0.1~workload.default~default.svc.cluster.local", "cluster": "workload.default"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $ADMIN}}},
 "dynamic_resources": {
   "ads_config": {"api_type": "$2", "set_node_on_first_message_only": true, "transport_api_version": "V3",
     "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
   "cds_config": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"},
   "lds_config": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}},
 "static_resources": {"clusters": [
  {"name": "xds-grpc", "type": "STATIC", "connect_timeout": "1s",
   "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"pipe": {"path": "$SOCK"}}}}]}]},
   "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
     "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
     "explicit_http_config": {"http2_protocol_options": {}}}}},
  {"name": "sds-grpc", "type": "STATIC", "connect_timeout": "1s",
   "load_assignment": {"cluster_name": "sds-grpc", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"pipe": {"path": "$SOCK"}}}}]}]},
   "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
     "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
     "explicit_http_config": {"http2_protocol_options": {}}}}}]}}
EOF
	if ! jq -e . "$D/boot.json" >/dev/null; then
		_t_fail "$M: bootstrap" "invalid JSON"
		return 1
	fi

	ROOTCA=$(secret ROOTCA validation "$CERTS/root.crt")
	DEFAULT=$(secret default cert "$CERTS/w1-chain.crt" "$CERTS/w1.key")
	ADS_ROOT=$(secret ads-root validation "$CERTS/root.crt")
	ADS_CERT=$(secret ads-cert cert "$CERTS/w2-chain.crt" "$CERTS/w2.key")
	ADS_CERT_BAD=$(secret ads-cert cert "$CERTS/w2-chain.crt" "$CERTS/w1.key") # key of another chain

	PROBE=$(plain_listener probe "$L_PROBE" "$APP" "$D/probe.log" "probe")
	OUT=$(plain_listener outbound "$L_OUT" "$CLUSTER" "$D/out.log" "%UPSTREAM_PEER_URI_SAN%")
	IN=$(tls_listener inbound "$L_IN" "$(sds_ref default)" "$(sds_ref ROOTCA)" "$D/in.log" \
		"%DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_TLS_VERSION%")
	IN_V2=$(tls_listener inbound "$L_IN" "$(sds_ref default)" "$(sds_ref ROOTCA)" "$D/in.log" \
		"v2 %DOWNSTREAM_PEER_URI_SAN%")
	NEVER=$(tls_listener never "$L_NEVER" "$(sds_ref never 1s)" "$(sds_ref ROOTCA)" "$D/never.log" "never")
	MTLS=$(mtls_cluster "$CLUSTER" "$L_IN" server.default.svc.cluster.local "$(sds_ref default)" "$(sds_ref ROOTCA)")
	OUT2=$(plain_listener outbound2 "$L_OUT2" "$CLUSTER2" "$D/out2.log" "%UPSTREAM_PEER_URI_SAN%")
	IN2=$(tls_listener inbound2 "$L_IN2" "$(sds_ads ads-cert)" "$(sds_ads ads-root)" "$D/in2.log" \
		"%DOWNSTREAM_PEER_URI_SAN%")
	MTLS2=$(mtls_cluster "$CLUSTER2" "$L_IN2" server-ads.default.svc.cluster.local "$(sds_ads ads-cert)" \
		"$(sds_ads ads-root)")

	# ======================================================================= 0. LIVE, no secret named

	write_secrets "$ROOTCA"
	write_resources "$(app_cluster)" "$PROBE" || {
		_t_fail "$M: resources" "jq failed"
		return 1
	}
	"$SERVER" --listen "unix:$SOCK" --log "$SLOG" "$RES" "$SECRETS" >>"$D/server.err" 2>&1 &
	SERVER_PID=$!
	_T_PIDS+=("$SERVER_PID")
	if ! wait_line "$SLOG" '^READY listen=unix:' 5; then
		_t_fail "$M: xDS server ready" "$(tail -n 5 "$D/server.err")"
		return 1
	fi
	start_skiff -c "$D/boot.json" --concurrency 2
	if ! wait_admin "$ADMIN"; then
		_t_fail "$M: skiff starts" "$(tail -n 20 "$SKIFF_LOG")"
		return 1
	fi
	check_stat server.state 0
	check_eq "$M: 0: the probe listener serves" "$(until_line "$L_PROBE" probe-0 5)" probe-0
	check_eq "$M: 0: no SDS stream without a secret named" "$(grep -c 'method=/envoy.service.secret' "$SLOG")" 0

	# ======================================================================= 1. warming

	write_resources "$(app_cluster)" "$MTLS" "$PROBE" "$OUT" "$IN" "$NEVER"
	push
	check_stat cluster_manager.cds.update_success 2
	check_stat listener_manager.lds.update_success 2
	check_stat cluster_manager.warming_clusters 1
	# ROOTCA comes again with each response of the multiplexed SDS stream (same bytes)
	check_range "$M: 1: ROOTCA accepted (sds.ROOTCA.update_success)" "$(stat sds.ROOTCA.update_success)" 1 5
	export WANT_CLUSTER="$CLUSTER"
	check_eq "$M: 1: /config_dump lists the mTLS cluster in dynamic_warming_clusters" "$(until_jq 3 \
		'.configs[] | select(."@type" | test("ClustersConfigDump")) | .dynamic_warming_clusters // [] | map(.cluster.name) | index(env.WANT_CLUSTER) != null')" true
	check_eq "$M: 1: /config_dump: the inbound listener has a warming_state" "$(until_jq 3 \
		'.configs[] | select(."@type" | test("ListenersConfigDump")) | .dynamic_listeners[] | select(.name == "inbound") | has("warming_state") and (has("active_state") | not)')" true
	check_eq "$M: 1: /config_dump: 'default' is a warming secret" "$(until_jq 3 \
		'.configs[] | select(."@type" | test("SecretsConfigDump")) | .dynamic_warming_secrets // [] | map(.name) | index("default") != null')" true
	# the `never` listener waits 1 s (its initial_fetch_timeout), then goes active without it
	check_eq "$M: 1: the listener naming a secret that never comes goes active at its initial_fetch_timeout" "$(until_jq 5 \
		'.configs[] | select(."@type" | test("ListenersConfigDump")) | .dynamic_listeners[] | select(.name == "never") | has("active_state")')" true
	check_stat listener_manager.total_listeners_warming 1
	r=$(pyh line "$L_IN" plain-to-warming)
	check_eq "$M: 1: the warming listener's port refuses connections" "$r" REFUSED
	r=$(pyh line "$L_NEVER" to-never)
	check_match "$M: 1: the timed-out listener accepts, then closes for lack of a context ($r)" "$r" '^(CLOSED|RESET)$'
	r=$(pyh line "$L_OUT" while-cluster-warms)
	check_match "$M: 1: the outbound listener is up but its cluster is not there yet ($r)" "$r" '^(CLOSED|RESET)$'
	check_eq "$M: 1: the probe listener still serves" "$(pyh line "$L_PROBE" probe-1)" probe-1
	check_contains "$M: 1: the warming is logged" "$(cat "$SKIFF_LOG")" "listener 'inbound': warming until SDS secret"
	check_match "$M: 1: skiff asked sds-grpc for default (a dynamic resource names it)" "$(cat "$SLOG")" \
		"REQUEST .*type=$SECRET_TYPE.*default"

	# ======================================================================= 2. default arrives

	write_secrets "$ROOTCA" "$DEFAULT"
	push
	check_stat sds.default.update_success 1
	check_stat cluster_manager.warming_clusters 0
	check_stat listener_manager.total_listeners_warming 0
	check_eq "$M: 2: a line crosses outbound -> mTLS (dynamic cluster, SDS) -> inbound (dynamic listener) -> app" \
		"$(until_line "$L_OUT" over-dynamic-mtls 5)" over-dynamic-mtls
	wait_line "$D/in.log" . 3
	check_eq "$M: 2: the server side logs the client's SPIFFE id" "$(tail -n 1 "$D/in.log" 2>/dev/null)" \
		"$TD/ns/default/sa/workload TLSv1.3"
	wait_line "$D/out.log" . 3
	check_eq "$M: 2: the client side logs the server's SPIFFE id" "$(tail -n 1 "$D/out.log" 2>/dev/null)" \
		"$TD/ns/default/sa/workload"
	check_eq "$M: 2: /config_dump: no warming cluster left" "$(until_jq 3 \
		'.configs[] | select(."@type" | test("ClustersConfigDump")) | has("dynamic_warming_clusters") | not')" true

	# ======================================================================= 3. update with the secrets present

	write_resources "$(app_cluster)" "$MTLS" "$PROBE" "$OUT" "$IN_V2" "$NEVER"
	push
	check_stat listener_manager.lds.update_success 3
	check_stat listener_manager.listener_modified 1
	check_stat listener_manager.total_listeners_warming 0
	check_eq "$M: 3: the updated listener never warmed (one warming line for 'inbound', from step 1)" \
		"$(grep -c "listener 'inbound': warming until" "$SKIFF_LOG")" 1
	check_eq "$M: 3: traffic passes on the updated listener at once" "$(pyh line "$L_OUT" after-update)" after-update
	wait_line "$D/in.log" '^v2 ' 3
	check_eq "$M: 3: the new listener version served it" "$(tail -n 1 "$D/in.log" 2>/dev/null)" \
		"v2 $TD/ns/default/sa/workload"

	# ======================================================================= 4. SDS over ADS

	write_secrets "$ROOTCA" "$DEFAULT" "$ADS_ROOT"
	write_resources "$(app_cluster)" "$MTLS" "$MTLS2" "$PROBE" "$OUT" "$IN_V2" "$NEVER" "$OUT2" "$IN2"
	push
	check_stat sds.ads-root.update_success 1
	check_stat cluster_manager.warming_clusters 1
	check_stat listener_manager.total_listeners_warming 1
	# the REQUEST lines of the ADS streams (STREAM lines say each stream's method)
	ads_requests() {
		awk '$1 == "STREAM" && $3 ~ /AggregatedDiscoveryService/ { ads[$2] = 1 }
		     $1 == "REQUEST" && ($2 in ads) { print }' "$SLOG"
	}
	check_match "$M: 4: the secrets are asked for on the ADS stream" "$(ads_requests)" "type=$SECRET_TYPE .*ads-cert"
	check_not_contains "$M: 4: ... and not on an SDS stream" "$(grep -v 'AggregatedDiscoveryService' "$SLOG" |
		awk '$1 == "STREAM" { m[$2] = $3 } $1 == "REQUEST" && m[$2] ~ /SecretDiscovery/ { print }')" ads-cert
	check_eq "$M: 4: the warming listener's port refuses connections" "$(pyh line "$L_IN2" too-early)" REFUSED

	write_secrets "$ROOTCA" "$DEFAULT" "$ADS_ROOT" "$ADS_CERT"
	push
	check_stat sds.ads-cert.update_success 1
	check_stat cluster_manager.warming_clusters 0
	check_stat listener_manager.total_listeners_warming 0
	check_eq "$M: 4: a line crosses the pair whose secrets came over ADS" "$(until_line "$L_OUT2" over-ads-sds 5)" over-ads-sds
	wait_line "$D/in2.log" . 3
	check_eq "$M: 4: the server side logs the client's SPIFFE id (ADS certificate)" "$(tail -n 1 "$D/in2.log" 2>/dev/null)" \
		"$TD/ns/default/sa/workload-ads"
	check_eq "$M: 4: the first pair still passes" "$(pyh line "$L_OUT" first-pair)" first-pair

	write_secrets "$ROOTCA" "$DEFAULT" "$ADS_ROOT" "$ADS_CERT_BAD"
	push
	check_stat sds.ads-cert.update_rejected 1
	if wait_line "$SLOG" "NACK .*type=$SECRET_TYPE.*error_detail=.*secret 'ads-cert'" 5; then
		_t_ok "$M: 4: the bad secret is NACKed on the ADS stream, naming it"
	else
		_t_fail "$M: 4: the bad secret is NACKed on the ADS stream, naming it" "$(grep NACK "$SLOG" | tail -n 3)"
	fi
	check_stat cluster_manager.cds.update_rejected 0
	check_stat listener_manager.lds.update_rejected 0
	check_eq "$M: 4: the previous ads-cert keeps serving" "$(pyh line "$L_OUT2" after-nack)" after-nack

	kill -TERM "$SKIFF_PID"
	if wait_exit "$SKIFF_PID" 5; then
		check_eq "$M: skiff exits cleanly" "$EXIT_CODE" 0
	else
		_t_fail "$M: skiff exits" "still running after SIGTERM"
	fi
	[ -n "${SDS_DYNAMIC_KEEP:-}" ] && cp "$SKIFF_LOG" "$SDS_DYNAMIC_KEEP.$M.skiff.log" &&
		cp "$SLOG" "$SDS_DYNAMIC_KEEP.$M.server.log"
	kill -TERM "$SERVER_PID" 2>/dev/null
	wait_exit "$SERVER_PID" 5 || kill -KILL "$SERVER_PID" 2>/dev/null
	return 0
}

run_mode sotw GRPC
run_mode delta DELTA_GRPC
summary
