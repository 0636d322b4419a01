#!/usr/bin/env bash
# skiff's command line: Envoy's flags (those pilot-agent passes and the other common ones),
# --mode validate and its error messages, --config-yaml merging, logging flags.
. "$(dirname "$0")/lib.sh"

require_tools curl jq python3 || {
	summary
	exit 1
}

# run ARGS...: runs skiff in $TMP (bounded to 10 s); sets RC, OUT (stdout), ERR (stderr).
run() {
	(cd "$TMP" && timeout 10 "$SKIFF_BIN" "$@") >"$TMP/out" 2>"$TMP/err"
	RC=$?
	OUT=$(cat "$TMP/out")
	ERR=$(cat "$TMP/err")
}

# A valid bootstrap: admin, two STATIC clusters, one listener.
good_json() { # ADMIN_PORT
	cat <<EOF
{
  "node": {"id": "cli-node", "cluster": "cli-cluster"},
  "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $1}}},
  "static_resources": {
    "clusters": [
      {"name": "alpha", "type": "STATIC", "connect_timeout": "1s",
       "load_assignment": {"cluster_name": "alpha", "endpoints": [{"lb_endpoints": [
         {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 19001}}}}]}]}},
      {"name": "beta", "type": "STATIC", "connect_timeout": "1s",
       "load_assignment": {"cluster_name": "beta", "endpoints": [{"lb_endpoints": [
         {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 19002}}}}]}]}}
    ],
    "listeners": [
      {"name": "in", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 19100}},
       "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy",
         "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                          "stat_prefix": "in", "cluster": "alpha"}}]}]}
    ]
  }
}
EOF
}

PORT=$(free_port) || exit 1
good_json "$PORT" >"$TMP/good.json"
A="http://127.0.0.1:$PORT"

# mutate NAME JQ-FILTER: writes $TMP/NAME.json, good.json transformed.
mutate() {
	jq "$2" "$TMP/good.json" >"$TMP/$1.json"
}

# ---------------------------------------------------------------- flags
run --version
check_eq "--version exit 0" "$RC" 0
check_match "--version prints a version" "$OUT" 'version: skiff/[0-9]+\.[0-9]+'

run --help
check_eq "--help exit 0" "$RC" 0
check_contains "--help prints usage" "$OUT" "USAGE"

run --no-such-flag
check_eq "unknown flag: exit 1" "$RC" 1
check_contains "unknown flag: message" "$ERR" "unknown flag"
check_contains "unknown flag: names it" "$ERR" "--no-such-flag"
check_contains "unknown flag: usage" "$ERR" "USAGE"

run -c
check_eq "missing value (-c): exit 1" "$RC" 1
check_contains "missing value (-c): message" "$ERR" "needs a value"
run -c good.json --config-yaml
check_eq "missing value (--config-yaml last): exit 1" "$RC" 1

run --mode fly -c good.json
check_eq "bad --mode: exit 1" "$RC" 1
check_contains "bad --mode: message" "$ERR" "'fly'"

run -l loud -c good.json
check_eq "bad --log-level: exit 1" "$RC" 1
check_contains "bad --log-level: message" "$ERR" "'loud'"

run --component-log-level nosuch:info -c good.json
check_eq "bad --component-log-level component: exit 1" "$RC" 1
check_contains "bad --component-log-level component: message" "$ERR" "nosuch"
run --component-log-level upstream:loud -c good.json
check_eq "bad --component-log-level level: exit 1" "$RC" 1
check_contains "bad --component-log-level level: message" "$ERR" "loud"

run --concurrency many -c good.json
check_eq "non-numeric --concurrency: exit 1" "$RC" 1
run --drain-strategy sometimes -c good.json
check_eq "bad --drain-strategy: exit 1" "$RC" 1
check_contains "bad --drain-strategy: message" "$ERR" "sometimes"

# ---------------------------------------------------------------- --mode validate
run --mode validate -c good.json
check_eq "validate good.json" "$RC:$OUT" "0:configuration 'good.json' OK"

cat >"$TMP/good.yaml" <<EOF
# a YAML bootstrap
node:
  id: yaml-node
admin:
  address:
    socket_address: {address: 127.0.0.1, port_value: $PORT}
static_resources:
  clusters:
  - name: ycluster
    type: STATIC
    connect_timeout: 0.5s
    load_assignment:
      cluster_name: ycluster
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {address: 127.0.0.1, port_value: 19003}
EOF
run --mode validate -c good.yaml
check_eq "validate good.yaml" "$RC:$OUT" "0:configuration 'good.yaml' OK"

# validate_fails NAME FILE NEEDLE...: exit 1, no "OK", each needle in stderr.
validate_fails() {
	local name=$1 file=$2 n
	shift 2
	run --mode validate -c "$file"
	check_eq "$name: exit 1" "$RC" 1
	check_not_contains "$name: not OK" "$OUT" "OK"
	for n in "$@"; do
		check_contains "$name: message has '$n'" "$ERR" "$n"
	done
}

mutate unknown '.static_resources.clusters[1].foo = 1'
validate_fails "unknown field" unknown.json "static_resources.clusters[1].foo" "unknown field"

printf 'static_resources:\n  clusters:\n  - name: c\n    bogus_key: 1\n' >"$TMP/unknown.yaml"
validate_fails "unknown field (yaml)" unknown.yaml "static_resources.clusters[0].bogus_key" "unknown field"

mutate dup '.static_resources.clusters[1].name = "alpha" | .static_resources.clusters[1].load_assignment.cluster_name = "alpha"'
validate_fails "duplicate cluster" dup.json "static_resources.clusters[1]" "duplicate" "alpha"

mutate noaddr 'del(.static_resources.listeners[0].address)'
validate_fails "listener without address" noaddr.json "static_resources.listeners[0]" "address"

mutate hostname '.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address = "backend.example"'
validate_fails "STATIC cluster with hostname" hostname.json \
	"static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address" \
	"backend.example"

mutate ads '.dynamic_resources = {"ads_config": {"api_type": "GRPC", "grpc_services": [{"envoy_grpc": {"cluster_name": "nosuch"}}]}, "cds_config": {"ads": {}}}'
validate_fails "ads_config unknown cluster" ads.json "dynamic_resources.ads_config" "nosuch"

mutate dupetag '.stats_config = {"stats_tags": [{"tag_name": "envoy.cluster_name", "regex": "^c(\\.(.+))$"}]}'
validate_fails "stats tag named twice (defaults on)" dupetag.json "stats_config.stats_tags[0]" "specified twice"

mutate badregex '.stats_config = {"stats_matcher": {"inclusion_list": {"patterns": [{"safe_regex": {"regex": "(("}}]}}}'
validate_fails "invalid stats_matcher regex" badregex.json "stats_config.stats_matcher.patterns[0].safe_regex"

printf '{\n  "admin": {\n    "address": [,\n}\n' >"$TMP/broken.json"
validate_fails "invalid JSON" broken.json "broken.json" "line 3"
check_match "invalid JSON: column given" "$ERR" "column [0-9]+"

validate_fails "missing file" does-not-exist.json "does-not-exist.json" "No such file"

# ---------------------------------------------------------------- --allow-unknown-static-fields
mutate unknown3 '.static_resources.clusters[1].foo = 1 | .static_resources.clusters[0].bar = {"x": 1} | .zzz = 2'
run --mode validate -c unknown3.json --allow-unknown-static-fields
check_eq "allow-unknown: validate OK" "$RC:$OUT" "0:configuration 'unknown3.json' OK"
check_contains "allow-unknown: warns with the path" "$ERR" "static_resources.clusters[1].foo"
check_contains "allow-unknown: warns about each field" "$ERR" "zzz"
run --mode validate -c unknown3.json
check_eq "without allow-unknown: validate fails" "$RC" 1

start_skiff -c unknown3.json --allow-unknown-static-fields
if wait_admin "$PORT"; then
	req "$A/stats?filter=^server\.static_unknown_fields$"
	check_eq "serve: server.static_unknown_fields counts them" "$BODY" $'server.static_unknown_fields: 3\n'
else
	_t_fail "serve with unknown fields" "admin never answered: $(tail -n 5 "$SKIFF_LOG")"
fi
stop_skiff

# ---------------------------------------------------------------- --config-yaml
PORT2=$(free_port) || exit 1
OVERLAY=$(
	cat <<EOF
{"admin": {"address": {"socket_address": {"port_value": $PORT2}}},
 "node": {"id": "overridden-node"},
 "static_resources": {"clusters": [{"name": "gamma", "type": "STATIC", "connect_timeout": "1s",
   "load_assignment": {"cluster_name": "gamma", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 19004}}}}]}]}}]}}
EOF
)
start_skiff -c good.json --config-yaml "$OVERLAY"
if wait_admin "$PORT2"; then
	req "$A/ready"
	check_eq "config-yaml moved the admin off the file's port" "$CODE" 000
	req "http://127.0.0.1:$PORT2/clusters"
	check_match "config-yaml merge: file cluster kept" "$BODY" '^alpha::observability_name::alpha$'
	check_match "config-yaml merge: cluster added" "$BODY" '^gamma::observability_name::gamma$'
	req "http://127.0.0.1:$PORT2/server_info"
	check_json "config-yaml merge: node id overridden, cluster kept" "$BODY" \
		'.node.id == "overridden-node" and .node.cluster == "cli-cluster"'
	check_json "config-yaml shown in server_info" "$BODY" '.command_line_options.config_yaml | contains("overridden-node")'
else
	_t_fail "config-yaml merge" "admin never answered on $PORT2: $(tail -n 5 "$SKIFF_LOG")"
fi
stop_skiff

PORT3=$(free_port) || exit 1
start_skiff --config-yaml "$(sed "s/port_value: $PORT}/port_value: $PORT3}/" "$TMP/good.yaml")"
if wait_admin "$PORT3"; then
	req "http://127.0.0.1:$PORT3/clusters"
	check_match "config-yaml alone (YAML text)" "$BODY" '^ycluster::observability_name::ycluster$'
	req "http://127.0.0.1:$PORT3/ready"
	check_eq "config-yaml alone: LIVE" "$CODE:$BODY" $'200:LIVE\n'
else
	_t_fail "config-yaml alone" "admin never answered on $PORT3: $(tail -n 5 "$SKIFF_LOG")"
fi
stop_skiff

# ---------------------------------------------------------------- pilot-agent's flags
# pkg/envoy/proxy.go, with every optional flag.
start_skiff -c good.json --drain-time-s 45 --drain-strategy immediate --local-address-ip-version v4 \
	--file-flush-interval-msec 1000 --disable-hot-restart --allow-unknown-static-fields -l warning \
	--component-log-level misc:error --concurrency 2 --file-flush-min-size-kb 64 \
	--skip-deprecated-logs --enable-core-dump
if wait_admin "$PORT"; then
	req "$A/server_info"
	CLO=$(printf '%s' "$BODY" | jq -c '.command_line_options' 2>&1)
	check_json "pilot-agent flags: config_path" "$CLO" '.config_path == "good.json"'
	check_json "pilot-agent flags: drain_time 45s" "$CLO" '.drain_time == "45s"'
	check_json "pilot-agent flags: drain_strategy Immediate" "$CLO" '.drain_strategy == "Immediate"'
	check_json "pilot-agent flags: ip version v4" "$CLO" '(.local_address_ip_version // "v4") == "v4"'
	check_json "pilot-agent flags: file_flush_interval 1s" "$CLO" '.file_flush_interval == "1s"'
	check_json "pilot-agent flags: disable_hot_restart" "$CLO" '.disable_hot_restart == true'
	check_json "pilot-agent flags: allow_unknown_static_fields" "$CLO" '.allow_unknown_static_fields == true'
	check_json "pilot-agent flags: log_level" "$CLO" '.log_level == "warning"'
	check_json "pilot-agent flags: component_log_level" "$CLO" '.component_log_level == "misc:error"'
	check_json "pilot-agent flags: concurrency" "$CLO" '.concurrency == 2'
	check_json "pilot-agent flags: file_flush_min_size" "$CLO" '(.file_flush_min_size | tonumber) == 65536'
	check_json "pilot-agent flags: skip_deprecated_logs" "$CLO" '.skip_deprecated_logs == true'
	check_json "pilot-agent flags: enable_core_dump" "$CLO" '.enable_core_dump == true'
	req "$A/logging"
	check_match "-l warning applied" "$BODY" '^  main: warning$'
	check_match "--component-log-level misc:error applied" "$BODY" '^  misc: error$'
	req "$A/stats?filter=^server\.concurrency$"
	check_eq "--concurrency in server.concurrency" "$BODY" $'server.concurrency: 2\n'
else
	_t_fail "pilot-agent flags" "admin never answered: $(tail -n 5 "$SKIFF_LOG")"
fi
stop_skiff

# ---------------------------------------------------------------- node and log flags
start_skiff -c good.json --service-node flag-node --service-cluster flag-cluster \
	--log-path "$TMP/skiff-file.log" --log-format "%l|%n|%v"
if wait_admin "$PORT"; then
	req "$A/server_info"
	check_json "--service-node overrides node id" "$BODY" '.node.id == "flag-node"'
	check_json "--service-cluster overrides node cluster" "$BODY" '.node.cluster == "flag-cluster"'
	check_json "--service-node shown in command_line_options" "$BODY" '.command_line_options.service_node == "flag-node"'
else
	_t_fail "node flags" "admin never answered: $(tail -n 5 "$SKIFF_LOG")"
fi
stop_skiff
check_eq "--log-path: exit 0 on SIGTERM" "${EXIT_CODE:-}" 0
FILELOG=$(cat "$TMP/skiff-file.log" 2>/dev/null)
check_match "--log-path: log written to the file" "$FILELOG" 'initializing skiff'
check_all_lines "--log-format '%l|%n|%v': every line" "$FILELOG" '^(trace|debug|info|warning|error|critical)\|[a-z_0-9]+\|.+$'
check_match "--log-format: level|logger|message" "$FILELOG" '^info\|main\|initializing skiff'
check_not_contains "--log-path: nothing logged to stderr" "$(cat "$SKIFF_LOG")" "initializing skiff"

summary
