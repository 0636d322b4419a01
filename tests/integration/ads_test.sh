#!/usr/bin/env bash
# ADS end to end over a unix socket, in SotW and in Delta: the test xDS server
# (xds/server/skiff-xds-server) and the ADS client (xds/ads.c through
# tests/integration/ads_driver, which reads ads_config and the xds-grpc pipe from a bootstrap
# and rejects resources named "bad"). Checked from both logs: the initial fetch in Envoy's
# order with the node once, ACKs with version and nonce, a NACK naming the resource with the
# last good version, a new version pushed and ACKed, garbage and an unknown type URL NACKed,
# the server killed and restarted -> back-off, reconnect, resubscription (Delta: with
# initial_resource_versions, so nothing is resent), stats, and clean exits under ASan.
. "$(dirname "$0")/lib.sh"

SKIFF_BUILD=${SKIFF_BUILD:-$(cd "$(dirname "$SKIFF_BIN")/.." && pwd)}
SERVER="$SKIFF_BUILD/xds/server/skiff-xds-server"
DRIVER="$SKIFF_BUILD/tests/ads_driver"
for b in "$SERVER" "$DRIVER"; do
	if [ ! -x "$b" ]; then
		_t_fail "binaries" "$b is not built"
		summary
		exit 1
	fi
done

C=type.googleapis.com/envoy.config.cluster.v3.Cluster
E=type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
L=type.googleapis.com/envoy.config.listener.v3.Listener
R=type.googleapis.com/envoy.config.route.v3.RouteConfiguration
U=type.googleapis.com/skiff.test.v1.Unknown

# ---------------------------------------------------------------- resource files

cluster_a() { # CONNECT_TIMEOUT
	echo "{\"@type\": \"$C\", \"name\": \"a\", \"type\": \"STATIC\", \"connect_timeout\": \"$1\",
  \"load_assignment\": {\"cluster_name\": \"a\", \"endpoints\": [{\"lb_endpoints\": [{\"endpoint\": {\"address\":
    {\"socket_address\": {\"address\": \"127.0.0.1\", \"port_value\": 9}}}}]}]}}"
}
CLUSTER_B="{\"@type\": \"$C\", \"name\": \"b\", \"type\": \"EDS\",
  \"eds_cluster_config\": {\"eds_config\": {\"ads\": {}}, \"service_name\": \"b-eds\"}}"
CLUSTER_BAD="{\"@type\": \"$C\", \"name\": \"bad\", \"type\": \"STATIC\"}"
CLUSTER_GARBLED="{\"@type\": \"$C\", \"@name\": \"garbled\", \"@bytes\": \"CiBub3QtZW5vdWdo\"}"
ENDPOINTS="{\"@type\": \"$E\", \"cluster_name\": \"b-eds\", \"endpoints\": [{\"lb_endpoints\": [{\"endpoint\":
  {\"address\": {\"socket_address\": {\"address\": \"127.0.0.1\", \"port_value\": 10}}}}]}]}"
LISTENER="{\"@type\": \"$L\", \"name\": \"l1\",
  \"address\": {\"socket_address\": {\"address\": \"127.0.0.1\", \"port_value\": 18080}},
  \"filter_chains\": [{\"filters\": [{\"name\": \"envoy.filters.network.http_connection_manager\", \"typed_config\": {
    \"@type\": \"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\",
    \"stat_prefix\": \"l1\", \"rds\": {\"config_source\": {\"ads\": {}}, \"route_config_name\": \"r1\"},
    \"http_filters\": [{\"name\": \"envoy.filters.http.router\", \"typed_config\":
      {\"@type\": \"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\"}}]}}]}]}"
route() { # DOMAIN
	echo "{\"@type\": \"$R\", \"name\": \"r1\", \"virtual_hosts\": [{\"name\": \"vh\", \"domains\": [\"$1\"],
  \"routes\": [{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"}}]}]}"
}
echo "[$(cluster_a 1s), $CLUSTER_B, $ENDPOINTS, $LISTENER, $(route '*')]" >"$TMP/res1.json"
echo "[$(cluster_a 1s), $CLUSTER_B, $CLUSTER_BAD, $ENDPOINTS, $LISTENER, $(route '*')]" >"$TMP/res-bad.json"
echo "[$(cluster_a 2s), $CLUSTER_B, $ENDPOINTS, $LISTENER, $(route 'example.com')]" >"$TMP/res2.json"
echo "[$(cluster_a 2s), $CLUSTER_B, $CLUSTER_GARBLED, $ENDPOINTS, $LISTENER, $(route 'example.com')]" >"$TMP/res-raw.json"

bootstrap() { # API_TYPE NODE_ID SOCKET
	cat <<EOF
{"node": {"id": "$2", "cluster": "test"},
 "dynamic_resources": {
   "ads_config": {"api_type": "$1", "set_node_on_first_message_only": true, "transport_api_version": "V3",
     "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"},
                        "initial_metadata": [{"key": "x-skiff-test", "value": "yes"}]}]},
   "cds_config": {"ads": {}, "resource_api_version": "V3"},
   "lds_config": {"ads": {}, "resource_api_version": "V3"}},
 "static_resources": {"clusters": [{"name": "xds-grpc", "type": "STATIC", "connect_timeout": "1s",
   "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"pipe": {"path": "$3"}}}}]}]},
   "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
     "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
     "explicit_http_config": {"http2_protocol_options": {}}}}}]}}
EOF
}

# ---------------------------------------------------------------- helpers

# wait_line FILE ERE [SECONDS]: polls (50 ms apart, bounded) until a line of FILE matches.
wait_line() {
	local f=$1 re=$2 n=$((${3:-10} * 20)) i
	for i in $(seq "$n"); do
		grep -qE -- "$re" "$f" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# check_line NAME FILE ERE [SECONDS]
check_line() {
	if wait_line "$2" "$3" "${4:-10}"; then
		_t_ok "$1"
		return 0
	fi
	_t_fail "$1" "no line matches /$3/ in $(basename "$2"): $(tail -n 8 "$2" 2>/dev/null)"
	return 1
}

# start_server LOG FILE: sets SERVER_PID.
start_server() {
	"$SERVER" --listen "unix:$SOCK" --log "$1" "$2" >>"$TMP/server.err" 2>&1 &
	SERVER_PID=$!
	_T_PIDS+=("$SERVER_PID")
}

# push FILE: the server serves FILE's resources as its next version.
push() {
	cp "$1" "$CURRENT"
	kill -HUP "$SERVER_PID"
}

# retry_ms_ok LOG: the n-th back-off (counted from the break) is within [250, 500) * 2^(n-1).
retry_ms_ok() {
	grep '^DISCONNECTED' "$1" | sed -E 's/.*retry_ms=([0-9]+).*/\1/' |
		awk 'BEGIN { lo = 250; n = 0 } { if ($1 < lo || $1 >= 2 * lo) bad = 1; lo *= 2; n++ }
		     END { exit (bad || n < 2) }'
}

# ---------------------------------------------------------------- one mode

run_mode() { # MODE (sotw|delta) API_TYPE
	local m=$1 slog="$TMP/$1-server1.log" slog2="$TMP/$1-server2.log" dlog="$TMP/$1-driver.log"
	local order nodes stats n nonce
	SOCK="$TMP/$m.sock"
	CURRENT="$TMP/$m-current.json"
	cp "$TMP/res1.json" "$CURRENT"
	bootstrap "$2" "driver-$m" "$SOCK" >"$TMP/$m-boot.json"
	start_server "$slog" "$CURRENT"
	check_line "$m: server ready" "$slog" '^READY listen=unix:' || return

	"$DRIVER" --bootstrap "$TMP/$m-boot.json" --reject bad --max-seconds 50 >"$dlog" 2>&1 &
	DRIVER_PID=$!
	_T_PIDS+=("$DRIVER_PID")

	# Initial fetch: CDS, EDS (the EDS cluster's service_name), LDS, RDS (the listener's route).
	check_line "$m: CDS v1 ACKed (version, nonce)" "$slog" "^ACK stream=1 mode=$m type=$C version=v1 nonce=1\$"
	check_line "$m: EDS v1 ACKed" "$slog" "^ACK stream=1 mode=$m type=$E version=v1 nonce=2\$"
	check_line "$m: LDS v1 ACKed" "$slog" "^ACK stream=1 mode=$m type=$L version=v1 nonce=3\$"
	check_line "$m: RDS v1 ACKed" "$slog" "^ACK stream=1 mode=$m type=$R version=v1 nonce=4\$"
	order=$(grep '^REQUEST stream=1 ' "$slog" | head -n 4 | sed -E 's/.* type=([^ ]+).*/\1/' | tr '\n' ' ')
	check_eq "$m: subscription order CDS, EDS, LDS, RDS" "$order" "$C $E $L $R "
	nodes=$(grep '^REQUEST stream=1 ' "$slog" | head -n 4 | sed -E 's/.* node=//' | tr '\n' ' ')
	check_eq "$m: node on the first request only" "$nodes" "driver-$m - - - "
	check_match "$m: EDS subscribed by service_name" "$(grep "^REQUEST stream=1 .*type=$E" "$slog")" 'b-eds'
	check_match "$m: RDS subscribed by the listener's route" "$(grep "^REQUEST stream=1 .*type=$R" "$slog")" 'r1'
	check_line "$m: :authority and initial_metadata" "$slog" '^STREAM stream=1 .*authority=xds-grpc .*x-skiff-test=yes'
	check_line "$m: client applied CDS" "$dlog" "^APPLY type=$C version=v1 nonce=1 resources=a,b removed= -> ACK\$"
	check_line "$m: connected" "$dlog" '^CONNECTED$'

	# A resource the client rejects: NACK with the last good version and the resource's name.
	push "$TMP/res-bad.json"
	if [ "$m" = sotw ]; then
		check_line "$m: NACK names 'bad', keeps version v1" "$slog" \
			"^NACK stream=1 mode=sotw type=$C version=v1 nonce=5 code=3 error_detail=cds 'bad': rejected by the test rule"
	else
		check_line "$m: NACK names 'bad'" "$slog" \
			"^NACK stream=1 mode=delta type=$C version=v2 nonce=5 code=3 error_detail=cds 'bad': rejected by the test rule"
	fi

	# A good new version: pushed, applied, ACKed.
	push "$TMP/res2.json"
	check_line "$m: CDS v3 ACKed" "$slog" "^ACK stream=1 mode=$m type=$C version=v3 "
	check_line "$m: RDS v3 ACKed" "$slog" "^ACK stream=1 mode=$m type=$R version=v3 "
	if [ "$m" = delta ]; then
		check_line "$m: only what changed is sent" "$slog" "^SEND stream=1 mode=delta type=$C version=v3 nonce=[0-9]+ resources=a removed=bad\$"
		check_line "$m: client sees the removal" "$dlog" "^APPLY type=$C version=v3 nonce=[0-9]+ resources=a removed=bad -> ACK\$"
	else
		check_line "$m: the whole state is sent" "$slog" "^SEND stream=1 mode=sotw type=$C version=v3 nonce=[0-9]+ resources=a,b\$"
	fi
	check_not_contains "$m: EDS not resent (unchanged)" "$(grep "^SEND stream=1 .*type=$E version=v3" "$slog")" "$E"

	# Garbage on the stream, a type URL nobody knows, a resource that does not decode: NACKs.
	kill -USR1 "$SERVER_PID"
	check_line "$m: garbage NACKed" "$slog" "^NACK stream=1 mode=$m type=$C .*nonce=garbage-1 code=3 error_detail=cannot decode"
	kill -USR2 "$SERVER_PID"
	check_line "$m: unknown type URL NACKed" "$slog" "^NACK stream=1 mode=$m type=$U .*nonce=unknown-1 code=3 error_detail=unknown type URL"
	push "$TMP/res-raw.json"
	check_line "$m: undecodable resource NACKed" "$slog" \
		"^NACK stream=1 mode=$m type=$C .*error_detail=resources\\[[0-9]\\].*cannot decode envoy.config.cluster.v3.Cluster"
	push "$TMP/res2.json"
	check_line "$m: and the next good version ACKed" "$slog" "^ACK stream=1 mode=$m type=$C version=v5 "
	check "$m: client still running" _t_running "$DRIVER_PID"

	# The server dies: back-off, reconnect to the new one, resubscribe.
	kill -KILL "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null
	check_line "$m: stream break seen" "$dlog" '^DISCONNECTED status=[0-9]+ retry_ms=[0-9]+'
	sleep 1.3
	check "$m: jittered exponential back-off (250-500 ms, then doubling)" retry_ms_ok "$dlog"
	start_server "$slog2" "$CURRENT"
	check_line "$m: CDS ACKed by the restarted server" "$slog2" "^ACK stream=1 mode=$m type=$C version=v1 "
	check_line "$m: RDS ACKed by the restarted server" "$slog2" "^ACK stream=1 mode=$m type=$R version=v1 "
	if [ "$m" = delta ]; then
		check_line "$m: reconnect sends initial_resource_versions" "$slog2" \
			"^REQUEST stream=1 mode=delta type=$C nonce= subscribe= unsubscribe= initial_resource_versions=.*a=[0-9a-f]{16}.* node=driver-delta\$"
		check_line "$m: ... for EDS too" "$slog2" \
			"^REQUEST stream=1 mode=delta type=$E nonce= subscribe=b-eds unsubscribe= initial_resource_versions=b-eds=[0-9a-f]{16} node=-\$"
		check_line "$m: so nothing is resent" "$slog2" "^SEND stream=1 mode=delta type=$C version=v1 nonce=1 resources= removed=\$"
	else
		check_line "$m: reconnect sends the last accepted version" "$slog2" \
			"^REQUEST stream=1 mode=sotw type=$C version=v5 nonce= names= node=driver-sotw\$"
	fi
	n=$(grep -c '^CONNECTED$' "$dlog")
	check_eq "$m: connected twice" "$n" 2

	# Stats, then clean exits (ASan's leak check runs at exit: a leak is a non-zero status).
	kill -USR1 "$DRIVER_PID"
	check_line "$m: stats dumped" "$dlog" '^STATS '
	stats=$(grep '^STATS ' "$dlog" | tail -n 1)
	check_contains "$m: connected_state 1" "$stats" "control_plane.connected_state=1"
	check_contains "$m: rate_limit_enforced 0" "$stats" "control_plane.rate_limit_enforced=0"
	check_match "$m: cds rejected counted" "$stats" 'cds\.update_rejected=[3-9] '
	check_match "$m: cds failure counted" "$stats" 'cds\.update_failure=[1-9]'
	check_contains "$m: cds version_text" "$stats" "cds.version_text=v1"
	kill -TERM "$DRIVER_PID"
	if wait_exit "$DRIVER_PID" 10; then
		check_eq "$m: client exits cleanly" "$EXIT_CODE" 0
	else
		_t_fail "$m: client exits" "still running"
	fi
	kill -TERM "$SERVER_PID"
	if wait_exit "$SERVER_PID" 10; then
		check_eq "$m: server exits cleanly" "$EXIT_CODE" 0
	else
		_t_fail "$m: server exits" "still running"
	fi
	[ "$_T_FAIL" -eq 0 ] || { echo "--- $m driver log"; tail -n 30 "$dlog"; }
}

run_mode sotw GRPC
run_mode delta DELTA_GRPC
if [ -s "$TMP/server.err" ]; then
	_t_fail "server stderr" "$(head -c 600 "$TMP/server.err")"
fi
summary
