#!/usr/bin/env bash
# SDS, end to end: the test xDS server (build/xds/server/skiff-xds-server) plays pilot-agent on
# a unix socket and serves the secrets `default` (workload certificate chain + key) and
# `ROOTCA` (trusted CA), issued by tests/tls/ca.sh. skiff's bootstrap has Istio's `sds-grpc`
# cluster and an outbound cluster whose tlsMode-istio transport socket names both secrets, as
# istiod writes it; skiff subscribes them at startup (SotW StreamSecrets, as pilot-agent
# serves). Envoy's behaviour is the contract:
#   1. both secrets are ACKed and listed under dynamic_active_secrets, private key redacted;
#      sds.default.update_success 1; server.days_until_first_cert_expiring set
#   2. rotation: a newly issued certificate (SIGHUP) is ACKed: update_success 2, new version
#   3. a key that does not match its chain is NACKed with a message naming the secret; the
#      old version is kept (config_dump unchanged), update_rejected 1
#   4. a secret the server does not have stays under dynamic_warming_secrets
. "$(dirname "$0")/lib.sh"

require_tools curl jq openssl || {
	summary
	exit 1
}

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

check_line() {
	if wait_line "$2" "$3" "${4:-5}"; then
		_t_ok "$1"
		return 0
	fi
	_t_fail "$1" "no line matches /$3/ in $(basename "$2"): $(tail -n 6 "$2" 2>/dev/null)"
	return 1
}

# xstat NAME: one stat's value, "missing" when absent.
xstat() {
	local re="^${1//./\\.}\$"
	curl -s -g --max-time 3 "http://127.0.0.1:$ADMIN/stats?filter=$re" |
		awk -F': ' -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print "missing" }'
}

# wait_stat NAME VALUE: polls until the stat has VALUE (5 s at most); prints the last value.
wait_stat() {
	local i v
	for i in $(seq 100); do
		v=$(xstat "$1")
		[ "$v" = "$2" ] && break
		sleep 0.05
	done
	echo "$v"
}

# secrets_dump: the SecretsConfigDump of /config_dump.
secrets_dump() {
	curl -s --max-time 3 "http://127.0.0.1:$ADMIN/config_dump?resource=dynamic_active_secrets"
}

# write_secrets CHAIN KEY CA [EXTRA]: the server's resource file (as pilot-agent sends them:
# inline bytes), replaced atomically.
write_secrets() {
	jq -n --rawfile chain "$1" --rawfile key "$2" --rawfile ca "$3" --arg t "$SECRET_TYPE" '[
		{"@type": $t, "name": "default", "tls_certificate": {
			"certificate_chain": {"inline_bytes": ($chain | @base64)},
			"private_key": {"inline_bytes": ($key | @base64)}}},
		{"@type": $t, "name": "ROOTCA", "validation_context": {
			"trusted_ca": {"inline_bytes": ($ca | @base64)}}}]' >"$SECRETS.tmp" &&
		mv "$SECRETS.tmp" "$SECRETS"
}

# Istio's SDS reference (ISTIO_CONTRACT.md; ../shared/conformance/istio/configdump/http_config.json).
sds_ref() {
	cat <<EOF
{"name": "$1", "sds_config": {"api_config_source": {"api_type": "GRPC",
  "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}],
  "set_node_on_first_message_only": true, "transport_api_version": "V3"},
  "initial_fetch_timeout": "0s", "resource_api_version": "V3"}}
EOF
}

write_bootstrap() { # FILE ADMIN_PORT [EXTRA_SECRET_NAME]
	local extra=${3:-}
	cat >"$1" <<EOF
{"node": {"id": "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local",
          "cluster": "productpage.default"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $2}}},
 "static_resources": {"clusters": [
  {"name": "sds-grpc", "type": "STATIC", "connect_timeout": "1s",
   "load_assignment": {"cluster_name": "sds-grpc", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"pipe": {"path": "$SOCK"}}}}]}]},
   "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
     "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
     "explicit_http_config": {"http2_protocol_options": {}}}}},
  {"name": "outbound|9080|v1|productpage.default.svc.cluster.local", "type": "STATIC",
   "connect_timeout": "1s",
   "load_assignment": {"cluster_name": "productpage", "endpoints": [{"lb_endpoints": [
     {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9}}},
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
        "default_validation_context": {"match_subject_alt_names": [
          {"exact": "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"}]},
        "validation_context_sds_secret_config": $(sds_ref ROOTCA)}},
      "sni": "outbound_.9080_.v1_.productpage.default.svc.cluster.local"}}},
    {"name": "tlsMode-disabled", "match": {},
     "transport_socket": {"name": "envoy.transport_sockets.raw_buffer", "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}}
   ]$( [ -n "$extra" ] && printf ', "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", "common_tls_context": {"tls_certificate_sds_secret_configs": [%s]}}}' "$(sds_ref "$extra")")}
 ]}}
EOF
}

# ======================================================================= certificates

if ! { bash "$CA" "$CERTS" ca >/dev/null &&
	bash "$CA" "$CERTS" workload w1 default productpage --days 30 >/dev/null &&
	bash "$CA" "$CERTS" workload w2 default productpage --days 10 >/dev/null; }; then
	_t_fail "certificates" "tests/tls/ca.sh failed"
	summary
	exit 1
fi
write_secrets "$CERTS/w1-chain.crt" "$CERTS/w1.key" "$CERTS/root.crt"

"$SERVER" --listen "unix:$SOCK" --log "$SLOG" "$SECRETS" >>"$TMP/server.err" 2>&1 &
SERVER_PID=$!
_T_PIDS+=("$SERVER_PID")
check_line "server ready" "$SLOG" '^READY listen=unix:' || {
	summary
	exit 1
}

ADMIN=$(free_port)
write_bootstrap "$TMP/boot.json" "$ADMIN" missing-secret
start_skiff -c "$TMP/boot.json" --concurrency 1
if ! wait_admin "$ADMIN"; then
	_t_fail "skiff starts" "$(tail -n 20 "$SKIFF_LOG")"
	summary
	exit 1
fi

# ======================================================================= 1. first versions

check_line "1: SDS request names both secrets" "$SLOG" \
	"REQUEST stream=[0-9]+ mode=sotw type=$SECRET_TYPE .*names=.*default"
check_line "1: secrets ACKed" "$SLOG" "^ACK stream=[0-9]+ mode=sotw type=$SECRET_TYPE version=v1 "
check_eq "1: sds.default.update_success" "$(wait_stat sds.default.update_success 1)" 1
check_eq "1: sds.ROOTCA.update_success" "$(wait_stat sds.ROOTCA.update_success 1)" 1
check_eq "1: sds.default.update_rejected" "$(xstat sds.default.update_rejected)" 0
days=$(xstat server.days_until_first_cert_expiring)
check_match "1: server.days_until_first_cert_expiring from the 30-day certificate" "$days" '^(29|30)$'

dump=$(secrets_dump)
check_eq "1: both active" "$(jq -r '[.configs[].name] | sort | join(",")' <<<"$dump")" "ROOTCA,default"
check_eq "1: default version" "$(jq -r '.configs[] | select(.name == "default") | .version_info' <<<"$dump")" v1
check_eq "1: entry type" "$(jq -r '.configs[0]["@type"]' <<<"$dump")" \
	type.googleapis.com/envoy.admin.v3.SecretsConfigDump.DynamicSecret
check_eq "1: private key redacted" \
	"$(jq -r '.configs[] | select(.name == "default") | .secret.tls_certificate.private_key.inline_bytes' <<<"$dump")" \
	"$(printf '[redacted]' | base64)"
check_not_contains "1: no key material in config_dump" \
	"$(curl -s --max-time 3 "http://127.0.0.1:$ADMIN/config_dump")" "$(base64 -w0 <"$CERTS/w1.key" | cut -c1-40)"
check_contains "1: chain shown" \
	"$(jq -r '.configs[] | select(.name == "default") | .secret.tls_certificate.certificate_chain.inline_bytes' <<<"$dump")" \
	"$(base64 -w0 <"$CERTS/w1-chain.crt" | cut -c1-40)"
check_eq "1: ROOTCA trusted_ca" \
	"$(jq -r '.configs[] | select(.name == "ROOTCA") | .secret.validation_context.trusted_ca.inline_bytes | @base64d' <<<"$dump")" \
	"$(cat "$CERTS/root.crt")"
last=$(jq -r '.configs[] | select(.name == "default") | .last_updated' <<<"$dump")
check_match "1: last_updated" "$last" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$'

# ======================================================================= 4. warming

warming=$(curl -s --max-time 3 "http://127.0.0.1:$ADMIN/config_dump?resource=dynamic_warming_secrets")
check_eq "4: a secret the server lacks is warming" "$(jq -r '[.configs[].name] | join(",")' <<<"$warming")" \
	missing-secret
check_eq "4: warming entry has no secret" "$(jq -r '.configs[0].secret // "none"' <<<"$warming")" none

# ======================================================================= 2. rotation

write_secrets "$CERTS/w2-chain.crt" "$CERTS/w2.key" "$CERTS/root.crt"
kill -HUP "$SERVER_PID"
check_line "2: rotated secret ACKed" "$SLOG" "^ACK stream=[0-9]+ mode=sotw type=$SECRET_TYPE version=v2 "
check_eq "2: sds.default.update_success" "$(wait_stat sds.default.update_success 2)" 2
dump2=$(secrets_dump)
check_eq "2: default version" "$(jq -r '.configs[] | select(.name == "default") | .version_info' <<<"$dump2")" v2
check_contains "2: new chain shown" \
	"$(jq -r '.configs[] | select(.name == "default") | .secret.tls_certificate.certificate_chain.inline_bytes' <<<"$dump2")" \
	"$(base64 -w0 <"$CERTS/w2-chain.crt" | cut -c1-40)"
check_match "2: days follow the 10-day certificate" "$(xstat server.days_until_first_cert_expiring)" '^(9|10)$'

# ======================================================================= 3. a mismatched key

write_secrets "$CERTS/w1-chain.crt" "$CERTS/w2.key" "$CERTS/root.crt"
kill -HUP "$SERVER_PID"
check_line "3: mismatched key NACKed, naming the secret" "$SLOG" \
	"^NACK stream=[0-9]+ mode=sotw type=$SECRET_TYPE version=v2 .*error_detail=secret 'default': .*private key does not match"
check_eq "3: sds.default.update_rejected" "$(wait_stat sds.default.update_rejected 1)" 1
check_eq "3: sds.default.update_success unchanged" "$(xstat sds.default.update_success)" 2
dump3=$(secrets_dump)
check_eq "3: old default kept" \
	"$(jq -c '.configs[] | select(.name == "default")' <<<"$dump3")" \
	"$(jq -c '.configs[] | select(.name == "default")' <<<"$dump2")"
check_contains "3: skiff logs the rejection" "$(cat "$SKIFF_LOG")" "secret 'default' version v3 rejected"

kill -TERM "$SKIFF_PID"
if wait_exit "$SKIFF_PID" 5; then
	check_eq "skiff exits cleanly" "$EXIT_CODE" 0
else
	_t_fail "skiff exits" "still running after SIGTERM"
fi
summary
