#!/usr/bin/env bash
# The admin API against a static bootstrap: every endpoint pilot-agent and istioctl use,
# Envoy's output formats, and the HTTP/1.1 handling of the admin listener.
. "$(dirname "$0")/lib.sh"

require_tools curl jq python3 || {
	summary
	exit 1
}

PORT=$(free_port) || exit 1
LPORT=$(free_port) || exit 1
A="http://127.0.0.1:$PORT"

cat >"$TMP/admin.json" <<EOF
{
  "node": {"id": "admin-test-node", "cluster": "admin-test-cluster"},
  "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $PORT}}},
  "stats_config": {
    "use_all_default_tags": false,
    "stats_tags": [{"tag_name": "cluster_name", "regex": "^cluster(\\\\.(.+);)"}],
    "stats_matcher": {"inclusion_list": {"patterns": [
      {"prefix": "server."}, {"prefix": "cluster_manager."}, {"prefix": "listener_manager."},
      {"prefix": "cluster.alpha;."}, {"exact": "cluster.beta.upstream_cx_total"}]}}
  },
  "static_resources": {
    "clusters": [
      {"name": "alpha", "alt_stat_name": "alpha;", "type": "STATIC", "connect_timeout": "1s",
       "load_assignment": {"cluster_name": "alpha", "endpoints": [{"lb_endpoints": [
         {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 19001}}}}]}]}},
      {"name": "beta", "type": "STATIC", "connect_timeout": "1s",
       "circuit_breakers": {"thresholds": [
         {"priority": "DEFAULT", "max_connections": 100000, "max_requests": 5000},
         {"priority": "HIGH", "max_retries": 7}]},
       "load_assignment": {"cluster_name": "beta", "endpoints": [{"lb_endpoints": [
         {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 19002}}},
          "load_balancing_weight": 3}]}]}}
    ],
    "listeners": [
      {"name": "ingress", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $LPORT}},
       "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
         "typed_config": {
           "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
           "stat_prefix": "ingress_http",
           "route_config": {"name": "local_route", "virtual_hosts": [{"name": "vh", "domains": ["*"],
             "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "alpha"}}]}]},
           "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
             "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}
    ],
    "secrets": [
      {"name": "server-cert", "tls_certificate": {
        "certificate_chain": {"inline_string": "CERT-CHAIN-PEM"},
        "private_key": {"inline_string": "TOP-SECRET-PRIVATE-KEY"}}}
    ]
  }
}
EOF

start_skiff -c admin.json --concurrency 2
MAIN_PID=$SKIFF_PID
if ! wait_admin "$PORT"; then
	_t_fail "startup" "admin never answered; log: $(tail -n 20 "$SKIFF_LOG")"
	summary
	exit 1
fi

# ---------------------------------------------------------------- /ready, /server_info
req "$A/ready"
check_eq "ready status" "$CODE" 200
check_eq "ready body" "$BODY" $'LIVE\n'

req "$A/server_info"
check_eq "server_info status" "$CODE" 200
check_json "server_info is JSON" "$BODY" 'type == "object"'
check_json "server_info state LIVE" "$BODY" '.state == "LIVE"'
check_json "server_info concurrency" "$BODY" '.command_line_options.concurrency == 2'
check_json "server_info config_path" "$BODY" '.command_line_options.config_path == "admin.json"'
check_json "server_info node id" "$BODY" '.node.id == "admin-test-node" and .node.cluster == "admin-test-cluster"'
check_json "server_info version" "$BODY" '.version | test("^skiff/")'

# ---------------------------------------------------------------- /stats
req "$A/stats"
ALL=$BODY
check_eq "stats status" "$CODE" 200
PLAIN=$(printf '%s' "$ALL" | grep -vE ': (P0\(|No recorded values)')
check_all_lines "stats lines are 'name: value'" "$PLAIN" '^[^ :][^ ]*: [0-9]+$'
check "stats sorted by name" bash -c 'printf "%s\n" "$1" | sed "s/: .*//" | LC_ALL=C sort -c' _ "$PLAIN"
check_match "stats has server.live" "$ALL" '^server\.live: 1$'
check_match "stats has server.state" "$ALL" '^server\.state: 0$'
check_match "stats has alpha cx_total (alt_stat_name)" "$ALL" '^cluster\.alpha;\.upstream_cx_total: 0$'
check_match "inclusion list keeps exact match" "$ALL" '^cluster\.beta\.upstream_cx_total: 0$'
check_not_contains "inclusion list drops other beta stats" "$ALL" "cluster.beta.upstream_rq_total"

req "$A/stats?usedonly"
check_eq "usedonly status" "$CODE" 200
check_match "usedonly keeps set gauges" "$BODY" '^server\.live: 1$'
check_match "usedonly keeps written counters" "$BODY" '^cluster_manager\.cluster_added: 2$'
check_not_contains "usedonly drops never-written counters" "$BODY" "cluster.alpha;.upstream_cx_total"

req "$A/stats?filter=^server\.(live|state)$"
check_eq "filter regex" "$BODY" $'server.live: 1\nserver.state: 0\n'
req "$A/stats?filter=%5Eserver%5C.%28live%7Cstate%29%24"
check_eq "filter regex percent-encoded" "$BODY" $'server.live: 1\nserver.state: 0\n'

req "$A/stats?format=json"
check_eq "stats json status" "$CODE" 200
check_json "stats json has stats[]" "$BODY" '.stats | type == "array" and length > 10'
check_json "stats json server.live" "$BODY" 'any(.stats[]; .name? == "server.live" and .value == 1)'

req "$A/stats?type=Counters"
check_match "type=Counters has a counter" "$BODY" '^cluster_manager\.cluster_added: 2$'
check_not_contains "type=Counters has no gauge" "$BODY" "server.live"
req "$A/stats?type=Gauges"
check_match "type=Gauges has a gauge" "$BODY" '^server\.live: 1$'
check_not_contains "type=Gauges has no counter" "$BODY" "cluster_manager.cluster_added"

req "$A/stats?filter=("
check_eq "invalid filter regex -> 400" "$CODE" 400

# ---------------------------------------------------------------- pilot-agent's queries
# pilot/cmd/pilot-agent/status/util/stats.go builds these with fmt.Sprintf (raw); the
# percent-encoded forms are what url.QueryEscape would produce.
Q_UPDATE='^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$'
Q_UPDATE_ENC='%5E%28cluster_manager%5C.cds%7Clistener_manager%5C.lds%29%5C.%28update_success%7Cupdate_rejected%29%24'
Q_READY='^(server\.state|listener_manager\.workers_started)'
Q_READY_ENC='%5E%28server%5C.state%7Clistener_manager%5C.workers_started%29'
UPDATE_ALL=$'cluster_manager.cds.update_rejected: 0\ncluster_manager.cds.update_success: 0\nlistener_manager.lds.update_rejected: 0\nlistener_manager.lds.update_success: 0\n'

req "$A/stats?usedonly&filter=$Q_UPDATE"
check_eq "pilot-agent update query (raw) status" "$CODE" 200
check_eq "pilot-agent update query (raw): nothing used in a static bootstrap" "$BODY" ""
req "$A/stats?usedonly&filter=$Q_UPDATE_ENC"
check_eq "pilot-agent update query (encoded)" "$CODE:$BODY" "200:"
req "$A/stats?filter=$Q_UPDATE"
check_eq "update filter selects the four counters (raw)" "$BODY" "$UPDATE_ALL"
req "$A/stats?filter=$Q_UPDATE_ENC"
check_eq "update filter selects the four counters (encoded)" "$BODY" "$UPDATE_ALL"

req "$A/stats?usedonly&filter=$Q_READY"
check_eq "pilot-agent readiness query (raw)" "$CODE:$BODY" $'200:listener_manager.workers_started: 1\nserver.state: 0\n'
req "$A/stats?usedonly&filter=$Q_READY_ENC"
check_eq "pilot-agent readiness query (encoded)" "$CODE:$BODY" $'200:listener_manager.workers_started: 1\nserver.state: 0\n'

# ---------------------------------------------------------------- /stats/prometheus
req "$A/stats/prometheus"
PROM=$BODY
check_eq "prometheus status" "$CODE" 200
check_match "prometheus TYPE line" "$PROM" '^# TYPE envoy_cluster_upstream_cx_total counter$'
check_match "prometheus tag from alt_stat_name 'alpha;'" "$PROM" '^envoy_cluster_upstream_cx_total\{cluster_name="alpha"\} 0$'
check_match "prometheus server_state" "$PROM" '^envoy_server_state\{\} 0$'
check_match "prometheus server_state TYPE gauge" "$PROM" '^# TYPE envoy_server_state gauge$'
check_match "prometheus server_live" "$PROM" '^envoy_server_live\{\} 1$'
check_not_contains "prometheus names carry no ';'" "$(printf '%s\n' "$PROM" | sed 's/{.*//')" ";"
check_eq "prometheus TYPE lines unique" "$(printf '%s\n' "$PROM" | awk '/^# TYPE/ {print $3}' | sort | uniq -d)" ""
check_all_lines "prometheus sample syntax" "$(printf '%s\n' "$PROM" | grep -v '^#')" \
	'^[a-zA-Z_:][a-zA-Z0-9_:]*\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*)?\} ([0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|\+Inf)$'

# ---------------------------------------------------------------- /config_dump
req "$A/config_dump"
DUMP=$BODY
check_eq "config_dump status" "$CODE" 200
P="type.googleapis.com/envoy.admin.v3."
check_eq "config_dump @type order" "$(printf '%s' "$DUMP" | jq -c '[.configs[]."@type"]')" \
	"[\"${P}BootstrapConfigDump\",\"${P}ClustersConfigDump\",\"${P}ListenersConfigDump\",\"${P}ScopedRoutesConfigDump\",\"${P}RoutesConfigDump\",\"${P}SecretsConfigDump\"]"
check_json "config_dump bootstrap node" "$DUMP" '.configs[0].bootstrap.node.id == "admin-test-node"'
check_json "config_dump static clusters" "$DUMP" '[.configs[1].static_clusters[].cluster.name] == ["alpha","beta"]'
check_json "config_dump static listener" "$DUMP" '.configs[2].static_listeners[0].listener.name == "ingress"'
check_json "config_dump inline route config" "$DUMP" '.configs[4].static_route_configs[0].route_config.name == "local_route"'
check_json "config_dump secret redacted" "$DUMP" \
	'.configs[5].static_secrets[0].secret.tls_certificate.private_key.inline_string == "[redacted]"'
check_json "config_dump certificate kept" "$DUMP" \
	'.configs[5].static_secrets[0].secret.tls_certificate.certificate_chain.inline_string == "CERT-CHAIN-PEM"'
check_not_contains "config_dump never shows the key" "$DUMP" "TOP-SECRET-PRIVATE-KEY"

req "$A/config_dump?include_eds"
check_eq "include_eds @type order" "$(printf '%s' "$BODY" | jq -c '[.configs[]."@type"]')" \
	"[\"${P}BootstrapConfigDump\",\"${P}ClustersConfigDump\",\"${P}EndpointsConfigDump\",\"${P}ListenersConfigDump\",\"${P}ScopedRoutesConfigDump\",\"${P}RoutesConfigDump\",\"${P}SecretsConfigDump\"]"
check_json "include_eds endpoint configs" "$BODY" \
	'[.configs[2].static_endpoint_configs[].endpoint_config.cluster_name] == ["alpha","beta"]'
check_not_contains "include_eds never shows the key" "$BODY" "TOP-SECRET-PRIVATE-KEY"

req "$A/config_dump?resource=static_clusters"
check_eq "resource=static_clusters status" "$CODE" 200
check_json "resource=static_clusters entries" "$BODY" \
	'(.configs | length == 2) and all(.configs[]; ."@type" == "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster") and ([.configs[].cluster.name] == ["alpha","beta"])'

req "$A/config_dump?resource=static_clusters&mask=cluster.name"
check_json "resource + mask keeps only cluster.name" "$BODY" \
	'(.configs | length == 2) and all(.configs[]; (keys == ["@type","cluster"]) and (.cluster | keys == ["@type","name"]))'

req "$A/config_dump?mask=bootstrap.node"
check_json "mask=bootstrap.node" "$BODY" \
	'(.configs[0].bootstrap | keys == ["node"]) and (.configs[0].bootstrap.node.id == "admin-test-node") and (.configs[1].static_clusters == null)'

req "$A/config_dump?resource=static_secrets"
check_json "resource=static_secrets redacted" "$BODY" \
	'.configs[0].secret.tls_certificate.private_key.inline_string == "[redacted]"'
check_not_contains "resource=static_secrets never shows the key" "$BODY" "TOP-SECRET-PRIVATE-KEY"

req "$A/config_dump?resource=bogus"
check_eq "resource=bogus -> 404" "$CODE" 404

# ---------------------------------------------------------------- /listeners, /clusters
req "$A/listeners"
check_eq "listeners text" "$CODE:$BODY" "200:ingress::127.0.0.1:$LPORT"$'\n'
req "$A/listeners?format=json"
check_json "listeners json" "$BODY" \
	".listener_statuses == [{\"name\":\"ingress\",\"local_address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$LPORT}}}]"

req "$A/clusters"
CL=$BODY
check_eq "clusters status" "$CODE" 200
check_all_lines "clusters lines are name::..." "$CL" \
	'^(alpha|beta)::(observability_name|default_priority|high_priority|added_via_api|127\.0\.0\.1:1900[12])::'
check_match "clusters observability_name (alt_stat_name)" "$CL" '^alpha::observability_name::alpha;$'
check_match "clusters observability_name (name)" "$CL" '^beta::observability_name::beta$'
check_match "clusters host health" "$CL" '^alpha::127\.0\.0\.1:19001::health_flags::healthy$'
check_match "clusters host weight" "$CL" '^beta::127\.0\.0\.1:19002::weight::3$'
check_match "clusters added_via_api" "$CL" '^alpha::added_via_api::false$'
check_match "clusters default circuit breaker" "$CL" '^alpha::default_priority::max_connections::1024$'
check_match "clusters configured max_connections" "$CL" '^beta::default_priority::max_connections::100000$'
check_match "clusters configured max_requests" "$CL" '^beta::default_priority::max_requests::5000$'
check_match "clusters unset threshold keeps default" "$CL" '^beta::default_priority::max_pending_requests::1024$'
check_match "clusters high priority max_retries" "$CL" '^beta::high_priority::max_retries::7$'
check_match "clusters high priority default" "$CL" '^beta::high_priority::max_connections::1024$'

req "$A/clusters?format=json"
check_json "clusters json names" "$BODY" '[.cluster_statuses[].name] == ["alpha","beta"]'
check_json "clusters json hosts" "$BODY" \
	'.cluster_statuses[1].host_statuses[0].address.socket_address.port_value == 19002 and .cluster_statuses[1].host_statuses[0].weight == 3'

# ---------------------------------------------------------------- /logging
req "$A/logging"
check_eq "logging GET status" "$CODE" 200
check_contains "logging GET lists loggers" "$BODY" "active loggers:"
check_match "logging GET upstream at info" "$BODY" '^  upstream: info$'

req -X POST "$A/logging?level=debug"
check_eq "logging level=debug status" "$CODE" 200
check_all_lines "logging level=debug sets every logger" "$(printf '%s' "$BODY" | grep '^  ')" '^  [a-z_0-9]+: debug$'
req "$A/logging"
check_match "logging level=debug persists" "$BODY" '^  main: debug$'

req -X POST "$A/logging?upstream=trace"
check_eq "logging upstream=trace status" "$CODE" 200
check_match "logging upstream=trace sets upstream" "$BODY" '^  upstream: trace$'
check_match "logging upstream=trace leaves others" "$BODY" '^  admin: debug$'

req "$A/logging?level=info"
check_eq "logging GET with a param -> 405" "$CODE" 405
req -X POST "$A/logging?level=bogus"
check_eq "logging bad level -> 400" "$CODE" 400
req -X POST "$A/logging?level=info"
check_match "logging back to info" "$BODY" '^  upstream: info$'

# ---------------------------------------------------------------- /memory
req "$A/memory"
check_json "memory allocated" "$BODY" '.allocated | test("^[1-9][0-9]*$")'

# ---------------------------------------------------------------- /healthcheck
req "$A/healthcheck/fail"
check_eq "healthcheck/fail GET -> 405" "$CODE" 405
req "$A/stats?filter=^server\.live$"
check_eq "GET did not fail health checks" "$BODY" $'server.live: 1\n'
req -X POST "$A/healthcheck/fail"
check_eq "healthcheck/fail POST" "$CODE" 200
req "$A/stats?filter=^server\.live$"
check_eq "server.live 0 after healthcheck/fail" "$BODY" $'server.live: 0\n'
req "$A/ready"
check_eq "ready is DRAINING after healthcheck/fail (Envoy serverState)" "$CODE:$BODY" $'503:DRAINING\n'
req "$A/healthcheck/ok"
check_eq "healthcheck/ok GET -> 405" "$CODE" 405
req -X POST "$A/healthcheck/ok"
check_eq "healthcheck/ok POST" "$CODE" 200
req "$A/stats?filter=^server\.live$"
check_eq "server.live 1 after healthcheck/ok" "$BODY" $'server.live: 1\n'
req "$A/ready"
check_eq "ready LIVE after healthcheck/ok" "$CODE:$BODY" $'200:LIVE\n'

# ---------------------------------------------------------------- /help, /, 404, HEAD
for path in /help /; do
	req "$A$path"
	check_eq "$path status" "$CODE" 200
	for ep in /config_dump /stats /stats/prometheus /ready /server_info /quitquitquit /logging /clusters; do
		check_match "$path lists $ep" "$BODY" "^  (POST )?$ep: "
	done
done
req "$A/no/such/path"
check_eq "unknown path -> 404" "$CODE" 404

req -I "$A/ready"
check_eq "HEAD status" "$CODE" 200
OUT=$(printf 'HEAD /ready HTTP/1.1\r\nHost: x\r\n\r\nGET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | http_exchange "$PORT")
check_eq "HEAD has no body (next response follows at once)" "$OUT" $'200 ""\n200 "LIVE\\n"\nCLOSED'

# ---------------------------------------------------------------- connections
OUT=$(curl -s -g --max-time 5 -o /dev/null -w '%{http_code} %{num_connects}\n' "$A/ready" -o /dev/null "$A/server_info")
check_eq "keep-alive: two requests, one connection" "$OUT" $'200 1\n200 0'

OUT=$(printf 'GET /ready HTTP/1.1\r\nHost: x\r\n\r\nGET /hot_restart_version HTTP/1.1\r\nHost: x\r\n\r\nGET /stats?filter=^server%%5C.state$ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | http_exchange "$PORT")
check_eq "pipelining: three requests in one write answered in order" "$OUT" \
	$'200 "LIVE\\n"\n200 "disabled\\n"\n200 "server.state: 0\\n"\nCLOSED'

OUT=$(printf 'GET /ready HTTP/1.0\r\n\r\n' | http_exchange "$PORT")
check_eq "HTTP/1.0 answered and closed" "$OUT" $'200 "LIVE\\n"\nCLOSED'

OUT=$(printf 'GARBAGE\r\n\r\n' | http_exchange "$PORT")
check_match "malformed request line -> 400" "$OUT" '^400 '
check_match "malformed request line closes" "$OUT" '^CLOSED$'
OUT=$(printf 'GET /ready HTTP/9.9\r\n\r\n' | http_exchange "$PORT")
check_match "bad HTTP version -> 400" "$OUT" '^400 '

BIG=$(head -c 70000 /dev/zero | tr '\0' a)
req -H "X-Big: $BIG" "$A/ready"
check_eq "header block over 64 KiB -> 431" "$CODE" 431
OUT=$( (printf 'GET /ready HTTP/1.1\r\nX-Big: %s\r\n\r\n' "$BIG") | http_exchange "$PORT")
check_match "431 on a raw connection, then closed" "$(printf '%s' "$OUT" | tr '\n' ' ')" '^431 .*CLOSED'
req "$A/ready"
check_eq "admin still serves after bad requests" "$CODE:$BODY" $'200:LIVE\n'

# ---------------------------------------------------------------- pilot-agent's termination
req "$A/drain_listeners?inboundonly&graceful"
check_eq "drain_listeners GET -> 405" "$CODE" 405
req -X POST "$A/drain_listeners?inboundonly&graceful"
check_eq "drain_listeners POST" "$CODE" 200
# EXIT_ON_ZERO_ACTIVE_CONNECTIONS polls this and sums listener.*downstream_cx_active lines.
req "$A/stats?usedonly&filter=downstream_cx_active$"
check_eq "downstream_cx_active query status" "$CODE" 200
if [ -n "$BODY" ]; then
	check_all_lines "downstream_cx_active query format" "$BODY" '^[^ :]*downstream_cx_active: [0-9]+$'
fi

# ---------------------------------------------------------------- /quitquitquit
req "$A/quitquitquit"
check_eq "quitquitquit GET -> 405" "$CODE" 405
check "skiff alive after GET /quitquitquit" _t_running "$MAIN_PID"
req -X POST "$A/quitquitquit"
check_eq "quitquitquit POST" "$CODE" 200
if wait_exit "$MAIN_PID" 2; then
	check_eq "quitquitquit: exit status 0" "$EXIT_CODE" 0
else
	_t_fail "quitquitquit: exits within 2 s" "pid $MAIN_PID still running"
fi

# ---------------------------------------------------------------- unix socket admin, SIGTERM
SOCK="$TMP/admin.sock"
cat >"$TMP/unix.json" <<EOF
{"node": {"id": "unix-node"}, "admin": {"address": {"pipe": {"path": "$SOCK"}}}}
EOF
start_skiff -c unix.json
UNIX_PID=$SKIFF_PID
if wait_admin_unix "$SOCK"; then
	req --unix-socket "$SOCK" http://localhost/ready
	check_eq "unix socket admin /ready" "$CODE:$BODY" $'200:LIVE\n'
	req --unix-socket "$SOCK" http://localhost/server_info
	check_json "unix socket admin /server_info" "$BODY" '.node.id == "unix-node"'
else
	_t_fail "unix socket admin" "no answer on $SOCK; log: $(tail -n 5 "$SKIFF_LOG")"
fi
kill -TERM "$UNIX_PID"
if wait_exit "$UNIX_PID" 2; then
	check_eq "SIGTERM: exit status 0" "$EXIT_CODE" 0
	check_not "unix socket removed on exit" test -e "$SOCK"
else
	_t_fail "SIGTERM: exits within 2 s" "pid $UNIX_PID still running"
fi

summary
