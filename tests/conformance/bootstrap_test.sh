#!/usr/bin/env bash
# Istio's real bootstraps (pilot-agent output, $SKIFF_CONFORMANCE/istio/bootstrap): each
# validates strictly, and skiff serves the default one as a sidecar before xDS arrives —
# up, INITIALIZING, answering pilot-agent's readiness queries and istioctl's endpoints.
. "$(dirname "$0")/../integration/lib.sh"

DIR="$SKIFF_CONFORMANCE/istio/bootstrap"
if [ ! -d "$DIR" ]; then
	skip "istio bootstraps" "no conformance corpus at $DIR (set SKIFF_CONFORMANCE)"
	summary
	exit $?
fi
require_tools curl jq python3 || {
	summary
	exit 1
}

# ---------------------------------------------------------------- strict validation
n=0
for f in "$DIR"/*_golden.json; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	name=$(basename "$f")
	out=$(timeout 10 "$SKIFF_BIN" --mode validate -c "$f" 2>&1)
	rc=$?
	check_eq "validate $name (strict)" "$rc:$out" "0:configuration '$f' OK"
done
[ "$n" -gt 0 ] || _t_fail "golden bootstraps" "none found in $DIR"

# ---------------------------------------------------------------- serving default_golden.json
GOLDEN="$DIR/default_golden.json"
if [ ! -f "$GOLDEN" ]; then
	_t_fail "default_golden.json" "missing from $DIR"
	summary
	exit 1
fi
PORT=$(free_port) || exit 1
A="http://127.0.0.1:$PORT"
# Its admin is 127.0.0.1:15000; move it. xds-grpc points at /tmp/XDS, which does not exist:
# skiff must stay up, INITIALIZING, as Envoy does while it cannot reach the control plane.
start_skiff -c "$GOLDEN" --config-yaml "{\"admin\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$PORT}}}}"
PID=$SKIFF_PID
if ! wait_admin "$PORT"; then
	_t_fail "serve default_golden.json" "admin never answered; log: $(tail -n 20 "$SKIFF_LOG")"
	summary
	exit 1
fi
sleep 1
check "still running after 1 s without an xDS server" _t_running "$PID"

req "$A/ready"
check_eq "/ready while waiting for xDS" "$CODE:$BODY" $'503:INITIALIZING\n'

req "$A/stats?filter=^server\.state$"
check_eq "server.state INITIALIZING (3)" "$BODY" $'server.state: 3\n'

# pilot-agent's readiness queries (status/util/stats.go), raw and url.QueryEscape'd.
Q_UPDATE='^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$'
Q_UPDATE_ENC='%5E%28cluster_manager%5C.cds%7Clistener_manager%5C.lds%29%5C.%28update_success%7Cupdate_rejected%29%24'
Q_READY='^(server\.state|listener_manager\.workers_started)'
Q_READY_ENC='%5E%28server%5C.state%7Clistener_manager%5C.workers_started%29'
LINE_UPDATE='^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected): [0-9]+$'
LINE_READY='^(server\.state|listener_manager\.workers_started): [0-9]+$'

for q in "$Q_UPDATE" "$Q_UPDATE_ENC"; do
	kind=raw
	[ "$q" = "$Q_UPDATE_ENC" ] && kind=encoded
	req "$A/stats?usedonly&filter=$q"
	check_eq "update query ($kind): 200" "$CODE" 200
	if [ -z "$BODY" ]; then
		_t_ok "update query ($kind): empty (nothing updated yet)"
	else
		check_all_lines "update query ($kind): name: value lines" "$BODY" "$LINE_UPDATE"
		check_not_contains "update query ($kind): no success before xDS" "$BODY" "update_success: 1"
	fi
	# Without usedonly the same filter must find the four counters, in this exact format.
	req "$A/stats?filter=$q"
	check_eq "update filter ($kind) selects the four counters" "$BODY" \
		$'cluster_manager.cds.update_rejected: 0\ncluster_manager.cds.update_success: 0\nlistener_manager.lds.update_rejected: 0\nlistener_manager.lds.update_success: 0\n'
done

for q in "$Q_READY" "$Q_READY_ENC"; do
	kind=raw
	[ "$q" = "$Q_READY_ENC" ] && kind=encoded
	req "$A/stats?usedonly&filter=$q"
	check_eq "readiness query ($kind): 200" "$CODE" 200
	check_all_lines "readiness query ($kind): name: value lines" "$BODY" "$LINE_READY"
	check_match "readiness query ($kind): server.state 3" "$BODY" '^server\.state: 3$'
	check_not_contains "readiness query ($kind): workers not started" "$BODY" "listener_manager.workers_started: 1"
	check_eq "readiness query ($kind): ends with a newline" "${BODY: -1}" $'\n'
done

req "$A/config_dump"
check_json "config_dump bootstrap node id" "$BODY" '.configs[0].bootstrap.node.id == "sidecar~1.2.3.4~foo~bar"'
check_json "config_dump node metadata ISTIO_VERSION (istioctl version)" "$BODY" \
	'.configs[0].bootstrap.node.metadata.ISTIO_VERSION == "binary-1.0"'
check_json "config_dump static clusters" "$BODY" \
	'[.configs[] | select(."@type" | endswith("ClustersConfigDump")) | .static_clusters[].cluster.name] | (index("xds-grpc") != null and index("prometheus_stats") != null)'

req "$A/stats/prometheus"
PROM=$BODY
check_match "prometheus xds-grpc cx_total" "$PROM" '^envoy_cluster_upstream_cx_total\{cluster_name="xds-grpc"\} [0-9]+$'
check_match "prometheus server_state" "$PROM" '^envoy_server_state\{\} 3$'
check_not_contains "inclusion list: sds-grpc stats not kept" "$PROM" 'cluster_name="sds-grpc"'
check_eq "prometheus TYPE lines unique" "$(printf '%s\n' "$PROM" | awk '/^# TYPE/ {print $3}' | sort | uniq -d)" ""

if [ -r "/proc/$PID/status" ]; then
	echo "info: idle RSS serving default_golden.json: $(awk '/^VmRSS/ {print $2, $3}' "/proc/$PID/status")"
fi

kill -TERM "$PID"
if wait_exit "$PID" 2; then
	check_eq "SIGTERM: exit 0" "$EXIT_CODE" 0
else
	_t_fail "SIGTERM: exits within 2 s" "pid $PID still running"
fi

summary
