#!/usr/bin/env bash
# mTLS between two sidecars, side by side in one run, on loopback: HTTP/1.1 keep-alive,
# 1 KiB responses from a backend nginx, through
#   direct        the load tool straight to the backend
#   skiff plain   client sidecar (HCM outbound listener, router -> a static cluster) ->
#                 plaintext -> server sidecar inbound (MTLS_INBOUND) -> backend
#   skiff mTLS    the same pair, the client's cluster with an UpstreamTlsContext (client
#                 certificate, CA, exact SPIFFE SAN, SNI, Istio's ALPN, TLS 1.2-1.3) and the
#                 server's inbound chain (tls_inspector, transport_protocol "tls") with a
#                 DownstreamTlsContext (require_client_certificate, ALPN h2,http/1.1)
#   nginx mTLS    two nginx: proxy_pass https:// with proxy_ssl_certificate, proxy_ssl_verify
#                 (upstream keepalive 64) -> listen ssl, ssl_verify_client on -> backend
#   HAProxy mTLS  two HAProxy: server ... ssl crt ca-file verify required verifyhost
#                 (http-reuse always) -> bind ... ssl crt ca-file verify required -> backend
# Certificates: tests/tls/ca.sh (EC P-256, Istio's SPIFFE URI SANs; the server's also has the
# DNS SAN server.default.svc, which nginx and HAProxy verify: they cannot match URI SANs).
# MTLS_INBOUND: the server sidecar's inbound filter chain, "hcm" (http_connection_manager +
# router: TLS terminated on an HTTP chain, as Istio's inbound HTTP ports; the default) or
# "tcp" (tcp_proxy: TLS terminated on an L4 chain, as Istio's inbound TCP ports).
# Every proxy runs one worker/thread; all proxies (both sides of a pair) are pinned to CPU 1,
# the load tool (bench/tools/l7load.c) and the backend to CPU 0.
#   latency      open loop at MTLS_RATE req/s (default 1000) over MTLS_CONNS (16) connections,
#                MTLS_ROUNDS (3) rounds of MTLS_RATE_DURATION (10) s per setup, setups
#                interleaved, SCHED_FIFO as in bench/l7.sh (MTLS_RT=0: never); p50/p99 of the
#                pooled samples, latency from each request's due time
#   throughput   closed loop, MTLS_DURATION (2) s per round: req/s, median of the rounds
#   handshakes   `openssl s_time -new` (full handshakes, a new session each, TLS 1.3, client
#                certificate) for MTLS_HS_SECS (8) s against each server sidecar's TLS port:
#                handshakes/s, and handshakes per CPU-second of the server process (its
#                utime+stime over the run): that is "per core", whatever the client's speed
# Usage: bench/mtls.sh BUILD_DIR [OUT.md]
#   with OUT.md: the mTLS section is written there; without: printed, and it replaces the
#   "## mTLS" section of bench/RESULTS.md (or is appended).
set -euo pipefail
build=${1:?usage: bench/mtls.sh BUILD_DIR [OUT.md]}
build=$(cd "$build" && pwd)
out=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
skiff=$build/proxy/skiff
load=$build/bench/l7load
INBOUND=${MTLS_INBOUND:-hcm}
CONNS=${MTLS_CONNS:-16}
RATE=${MTLS_RATE:-1000}
RATE_DURATION=${MTLS_RATE_DURATION:-10}
DURATION=${MTLS_DURATION:-2}
ROUNDS=${MTLS_ROUNDS:-3}
HS_SECS=${MTLS_HS_SECS:-8}
case $INBOUND in tcp | hcm) ;; *) echo "mtls.sh: MTLS_INBOUND is tcp or hcm" >&2; exit 2 ;; esac

[ -x "$skiff" ] || { echo "mtls.sh: $skiff missing (./run build)" >&2; exit 1; }
[ -x "$load" ] || { echo "mtls.sh: $load missing (configure with -Dbench=true: ./run bench)" >&2; exit 1; }
for t in nginx haproxy curl python3 taskset openssl; do
	command -v "$t" >/dev/null || { echo "mtls.sh: needs $t" >&2; exit 1; }
done

work=$(mktemp -d)
chmod 755 "$work" # nginx's workers run as nobody and read the document root and certificates
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(nproc)" -ge 2 ]; then
	pin_proxy=(taskset -c 1) pin_load=(taskset -c 0)
	pinning="all proxies pinned to CPU 1; load tool, backend and s_time on CPU 0 (taskset)"
else
	pin_proxy=() pin_load=()
	pinning="one CPU only: nothing pinned"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # PORT: until something accepts on it (10 s at most)
	local i
	for i in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "mtls.sh: nothing listens on port $1" >&2
	return 1
}
tree() { echo "$1" $(pgrep -P "$1"); } # a process and its children
# PIDS... -> "TICKS NS": utime+stime in clock ticks and the scheduler's run time in ns
cpu_now() {
	local f=() p
	for p in "$@"; do f+=("/proc/$p/stat" /proc/"$p"/task/*/schedstat); done
	awk '/\) / { sub(/^.*\) /, ""); split($0, a, " "); t += a[12] + a[13]; next }
	     { ns += $1 } END { printf "%d %.0f\n", t, ns }' "${f[@]}"
}
RT=${MTLS_RT:-1}
if [ "$RT" = 1 ] && ! chrt -f 10 true 2>/dev/null; then RT=0; fi
set_rt() { # 1|0: every process (all threads) of the backend and the proxies
	local p
	[ "$RT" = 1 ] || return 0
	for p in $all_procs; do
		if [ "$1" = 1 ]; then chrt -f -a -p 10 "$p"; else chrt -o -a -p 0 "$p"; fi
	done
}
kv() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; } # KEY LINE

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
load0=$(cut -d' ' -f1 /proc/loadavg)
echo "mtls: $(date +%T) start (inbound: $INBOUND)" >&2

# ---------------------------------------------------------------- certificates
pki=$work/pki
ca() { bash "$here/../tests/tls/ca.sh" "$pki" "$@"; }
ca ca
ca workload server default server --dns server.default.svc
ca workload client default client
cat "$pki/server-chain.crt" "$pki/server.key" >"$pki/server.pem" # HAProxy: chain + key
cat "$pki/client-chain.crt" "$pki/client.key" >"$pki/client.pem"
chmod 755 "$pki"
chmod 644 "$pki"/*
SAN_SERVER=spiffe://cluster.local/ns/default/sa/server

# ---------------------------------------------------------------- backend (as bench/l7.sh)
mkdir -p "$work/www" "$work/backend"
chmod 755 "$work/www"
python3 -c 'import sys; sys.stdout.write(("0123456789abcdef" * 64)[:1023] + "\n")' >"$work/www/1k"
chmod 644 "$work/www/1k"
bport=$(free_port)
ngx_common() { # DIR
	cat <<NGX
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $1; proxy_temp_path $1; fastcgi_temp_path $1;
  uwsgi_temp_path $1; scgi_temp_path $1;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
NGX
}
{
	ngx_common "$work/backend"
	cat <<NGX
  open_file_cache max=16;
  server { listen 127.0.0.1:$bport; root $work/www; }
}
NGX
} >"$work/backend/nginx.conf"
"${pin_load[@]}" nginx -p "$work/backend" -e "$work/backend/error.log" -c "$work/backend/nginx.conf" &
backend_pid=$!
pids+=($!)

declare -A port pid label
setups=(direct skiff_plain skiff_mtls nginx haproxy)
label[direct]="direct (client -> app)"
label[skiff_plain]="skiff pair, plaintext"
label[skiff_mtls]="skiff pair, mTLS"
label[nginx]="nginx pair, mTLS"
label[haproxy]="HAProxy pair, mTLS"
port[direct]=$bport

# ---------------------------------------------------------------- skiff: server sidecar
in_plain=$(free_port)
in_mtls=$(free_port)
s_admin=$(free_port)
HCM=type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
ROUTER='{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}'
hcm() { # STAT-PREFIX CLUSTER
	echo "{\"name\": \"envoy.filters.network.http_connection_manager\", \"typed_config\": {\"@type\": \"$HCM\",
  \"stat_prefix\": \"$1\", \"codec_type\": \"AUTO\",
  \"route_config\": {\"name\": \"$1\", \"virtual_hosts\": [{\"name\": \"all\", \"domains\": [\"*\"],
    \"routes\": [{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"$2\", \"timeout\": \"0s\"}}]}]},
  \"http_filters\": [$ROUTER]}}"
}
tcp() { # STAT-PREFIX CLUSTER
	echo "{\"name\": \"envoy.filters.network.tcp_proxy\", \"typed_config\": {\"@type\": \"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\", \"stat_prefix\": \"$1\", \"cluster\": \"$2\"}}"
}
inbound_filter() { if [ "$INBOUND" = hcm ]; then hcm "$1" "$2"; else tcp "$1" "$2"; fi; }
cluster() { # NAME PORT [TRANSPORT-SOCKET]
	echo "{\"name\": \"$1\", \"type\": \"STATIC\", \"connect_timeout\": \"5s\"${3:+, \"transport_socket\": $3},
  \"load_assignment\": {\"cluster_name\": \"$1\", \"endpoints\": [{\"lb_endpoints\": [
    {\"endpoint\": {\"address\": {\"socket_address\": {\"address\": \"127.0.0.1\", \"port_value\": $2}}}}]}]}}"
}
listener() { # NAME PORT CHAINS [EXTRA]
	echo "{\"name\": \"$1\", \"stat_prefix\": \"$1\", \"address\": {\"socket_address\": {\"address\": \"127.0.0.1\", \"port_value\": $2}}${4:+, $4},
  \"filter_chains\": [$3]}"
}
TLS_PARAMS='"tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"}'
down_ts="{\"name\": \"envoy.transport_sockets.tls\", \"typed_config\": {
  \"@type\": \"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\",
  \"require_client_certificate\": true,
  \"common_tls_context\": {$TLS_PARAMS, \"alpn_protocols\": [\"h2\", \"http/1.1\"],
    \"tls_certificates\": [{\"certificate_chain\": {\"filename\": \"$pki/server-chain.crt\"},
                          \"private_key\": {\"filename\": \"$pki/server.key\"}}],
    \"validation_context\": {\"trusted_ca\": {\"filename\": \"$pki/root.crt\"},
                           \"match_subject_alt_names\": [{\"prefix\": \"spiffe://cluster.local/\"}]}}}}"
inspector='"listener_filters": [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}]'
cat >"$work/server.json" <<EOF
{"node": {"id": "server-sidecar", "cluster": "bench"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $s_admin}}},
 "static_resources": {
  "clusters": [$(cluster "inbound|$bport||" "$bport")],
  "listeners": [
    $(listener in_plain "$in_plain" "{\"filters\": [$(inbound_filter in_plain "inbound|$bport||")]}"),
    $(listener in_mtls "$in_mtls" "{\"filter_chain_match\": {\"transport_protocol\": \"tls\"}, \"transport_socket\": $down_ts,
      \"filters\": [$(inbound_filter in_mtls "inbound|$bport||")]}" "$inspector")
  ]}}
EOF
"${pin_proxy[@]}" "$skiff" -c "$work/server.json" --concurrency 1 -l warning --disable-hot-restart \
	>"$work/skiff-server.log" 2>&1 &
pid[skiff_server]=$!
pids+=($!)

# ---------------------------------------------------------------- skiff: client sidecar
port[skiff_plain]=$(free_port)
port[skiff_mtls]=$(free_port)
c_admin=$(free_port)
sni="outbound_.${in_mtls}_._.server.default.svc.cluster.local"
up_ts="{\"name\": \"envoy.transport_sockets.tls\", \"typed_config\": {
  \"@type\": \"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\",
  \"sni\": \"$sni\",
  \"common_tls_context\": {$TLS_PARAMS, \"alpn_protocols\": [\"istio-peer-exchange\", \"istio\"],
    \"tls_certificates\": [{\"certificate_chain\": {\"filename\": \"$pki/client-chain.crt\"},
                          \"private_key\": {\"filename\": \"$pki/client.key\"}}],
    \"validation_context\": {\"trusted_ca\": {\"filename\": \"$pki/root.crt\"},
                           \"match_subject_alt_names\": [{\"exact\": \"$SAN_SERVER\"}]}}}}"
cat >"$work/client.json" <<EOF
{"node": {"id": "client-sidecar", "cluster": "bench"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $c_admin}}},
 "static_resources": {
  "clusters": [$(cluster "outbound|$in_plain||server.plain" "$in_plain"),
               $(cluster "outbound|$in_mtls||server.mtls" "$in_mtls" "$up_ts")],
  "listeners": [
    $(listener out_plain "${port[skiff_plain]}" "{\"filters\": [$(hcm out_plain "outbound|$in_plain||server.plain")]}"),
    $(listener out_mtls "${port[skiff_mtls]}" "{\"filters\": [$(hcm out_mtls "outbound|$in_mtls||server.mtls")]}")
  ]}}
EOF
"${pin_proxy[@]}" "$skiff" -c "$work/client.json" --concurrency 1 -l warning --disable-hot-restart \
	>"$work/skiff-client.log" 2>&1 &
pid[skiff_client]=$!
pids+=($!)

# ---------------------------------------------------------------- nginx pair
nginx_srv=$(free_port)
port[nginx]=$(free_port)
mkdir -p "$work/ngx-server" "$work/ngx-client"
{
	ngx_common "$work/ngx-server"
	cat <<NGX
  upstream backend { server 127.0.0.1:$bport; keepalive 64; keepalive_requests 100000000; keepalive_timeout 300s; }
  server {
    listen 127.0.0.1:$nginx_srv ssl;
    ssl_certificate $pki/server-chain.crt;
    ssl_certificate_key $pki/server.key;
    ssl_client_certificate $pki/root.crt;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGX
} >"$work/ngx-server/nginx.conf"
{
	ngx_common "$work/ngx-client"
	cat <<NGX
  upstream server_sidecar { server 127.0.0.1:$nginx_srv; keepalive 64; keepalive_requests 100000000; keepalive_timeout 300s; }
  server {
    listen 127.0.0.1:${port[nginx]};
    location / {
      proxy_pass https://server_sidecar;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_ssl_certificate $pki/client-chain.crt;
      proxy_ssl_certificate_key $pki/client.key;
      proxy_ssl_trusted_certificate $pki/root.crt;
      proxy_ssl_verify on;
      proxy_ssl_name server.default.svc;
      proxy_ssl_server_name on;
      proxy_ssl_protocols TLSv1.2 TLSv1.3;
      proxy_ssl_session_reuse on;
    }
  }
}
NGX
} >"$work/ngx-client/nginx.conf"
for d in ngx-server ngx-client; do
	"${pin_proxy[@]}" nginx -p "$work/$d" -e "$work/$d/error.log" -c "$work/$d/nginx.conf" &
	pid[$d]=$!
	pids+=($!)
done

# ---------------------------------------------------------------- HAProxy pair
hap_srv=$(free_port)
port[haproxy]=$(free_port)
hap_common() {
	cat <<HAP
global
  nbthread 1
  maxconn 4000
  ssl-server-verify required
defaults
  mode http
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
HAP
}
{
	hap_common
	cat <<HAP
frontend f
  bind 127.0.0.1:$hap_srv ssl crt $pki/server.pem ca-file $pki/root.crt verify required ssl-min-ver TLSv1.2
  default_backend b
backend b
  server app 127.0.0.1:$bport
HAP
} >"$work/haproxy-server.cfg"
{
	hap_common
	cat <<HAP
frontend f
  bind 127.0.0.1:${port[haproxy]}
  default_backend b
backend b
  server srv 127.0.0.1:$hap_srv ssl crt $pki/client.pem ca-file $pki/root.crt verify required verifyhost server.default.svc sni str(server.default.svc) ssl-min-ver TLSv1.2
HAP
} >"$work/haproxy-client.cfg"
for d in haproxy-server haproxy-client; do
	"${pin_proxy[@]}" haproxy -f "$work/$d.cfg" -db >"$work/$d.log" 2>&1 &
	pid[$d]=$!
	pids+=($!)
done

# ---------------------------------------------------------------- reference TLS server
# `openssl s_server` with the same certificates, requiring a client certificate: what this
# OpenSSL costs per full handshake with nothing else around it (for the handshake runs only).
ref_srv=$(free_port)
"${pin_proxy[@]}" openssl s_server -accept "127.0.0.1:$ref_srv" -cert "$pki/server-chain.crt" -key "$pki/server.key" \
	-CAfile "$pki/root.crt" -Verify 1 -verify_return_error -quiet -naccept 1000000 </dev/null >"$work/s_server.log" 2>&1 &
pid[s_server]=$!
pids+=($!)

# ---------------------------------------------------------------- readiness and checks
declare -A members # the processes whose CPU a setup costs
members[direct]=""
members[skiff_plain]="skiff_client skiff_server"
members[skiff_mtls]="skiff_client skiff_server"
members[nginx]="ngx-client ngx-server"
members[haproxy]="haproxy-client haproxy-server"
for p in $bport $in_plain $in_mtls $nginx_srv $hap_srv $ref_srv "${port[@]}"; do
	wait_port "$p" || {
		tail -n 20 "$work"/*.log "$work"/*/error.log >&2 2>/dev/null
		exit 1
	}
done
wait_port "$s_admin"
wait_port "$c_admin"
for m in "$backend_pid" "${pid[ngx-server]}" "${pid[ngx-client]}"; do # nginx forks its worker after it listens
	for _ in $(seq 1 100); do [ -n "$(pgrep -P "$m")" ] && break; sleep 0.05; done
done
declare -A procs
all_procs=$(tree "$backend_pid")
backend_procs=$all_procs
for r in skiff_client skiff_server ngx-server ngx-client haproxy-server haproxy-client; do
	procs[$r]=$(tree "${pid[$r]}")
	all_procs="$all_procs ${procs[$r]}"
done
procs[s_server]=${pid[s_server]}
setup_procs() { local r; for r in ${members[$1]}; do echo "${procs[$r]}"; done; }

stat_of() { # ADMIN NAME
	curl -s "http://127.0.0.1:$1/stats" | awk -F': ' -v n="$2" '$1 == n { print $2; f = 1 } END { if (!f) print 0 }'
}
for s in "${setups[@]}"; do
	if ! curl -sf --max-time 5 -o "$work/got" "http://127.0.0.1:${port[$s]}/1k" || ! cmp -s "$work/got" "$work/www/1k"; then
		echo "mtls.sh: ${label[$s]} does not return the 1 KiB body" >&2
		tail -n 20 "$work"/*.log "$work"/*/error.log >&2 2>/dev/null
		exit 1
	fi
done
# The TLS really happened, and the servers refuse a client without a certificate.
hs_client=$(stat_of "$c_admin" "cluster.outbound|$in_mtls||server.mtls.ssl.handshake")
hs_server=$(stat_of "$s_admin" "listener.in_mtls.ssl.handshake")
if [ "${hs_client:-0}" -lt 1 ] || [ "${hs_server:-0}" -lt 1 ]; then
	echo "mtls.sh: skiff's mTLS pair made no TLS handshake (client $hs_client, server $hs_server)" >&2
	exit 1
fi
for p in $in_mtls $nginx_srv $hap_srv; do
	if curl -sf --max-time 5 -o /dev/null --cacert "$pki/root.crt" --resolve "server.default.svc:$p:127.0.0.1" \
		"https://server.default.svc:$p/1k" 2>/dev/null; then
		echo "mtls.sh: the TLS port $p answered a client without a certificate" >&2
		exit 1
	fi
	if ! curl -sS --http1.1 --max-time 5 -o /dev/null --cacert "$pki/root.crt" --cert "$pki/client-chain.crt" \
		--key "$pki/client.key" --resolve "server.default.svc:$p:127.0.0.1" "https://server.default.svc:$p/1k" 2>"$work/curl.err"; then
		cat "$work/curl.err" >&2
		echo "mtls.sh: the TLS port $p does not complete a handshake with the client certificate" >&2
		exit 1
	fi
done

# ---------------------------------------------------------------- requests
echo -e "setup\tkind\tticks\tns\tline" >"$work/runs.tsv"
run_one() { # SETUP closed|rate
	local s=$1 kind=$2 args c0="0 0" c1="0 0" line rt=() pp
	pp=$(setup_procs "$s")
	if [ "$kind" = rate ]; then
		args=(--rate "$RATE" --samples "$work/$s.samples" "127.0.0.1:${port[$s]}/1k" "$CONNS" "$RATE_DURATION")
		[ "$RT" = 1 ] && rt=(chrt -f 10)
	else
		args=("127.0.0.1:${port[$s]}/1k" "$CONNS" "$DURATION")
	fi
	[ -n "$pp" ] && c0=$(cpu_now $pp)
	line=$("${rt[@]}" "${pin_load[@]}" "$load" "${args[@]}") ||
		echo "mtls.sh: $s $kind: l7load reported errors: $line" >&2
	[ -n "$pp" ] && c1=$(cpu_now $pp)
	read -r t0 n0 <<<"$c0"
	read -r t1 n1 <<<"$c1"
	echo -e "$s\t$kind\t$((t1 - t0))\t$((n1 - n0))\t$line" >>"$work/runs.tsv"
	echo "mtls: $s $kind: $line" >&2
}
n=${#setups[@]}
for s in "${setups[@]}"; do "${pin_load[@]}" "$load" "127.0.0.1:${port[$s]}/1k" "$CONNS" 0.5 >/dev/null || true; done
for r in $(seq 1 "$ROUNDS"); do
	echo "mtls: $(date +%T) round $r" >&2
	for i in $(seq 0 $((n - 1))); do run_one "${setups[$(((i + r - 1) % n))]}" closed; done
	set_rt 1
	for i in $(seq 0 $((n - 1))); do run_one "${setups[$(((i + r) % n))]}" rate; done
	set_rt 0
done

# ---------------------------------------------------------------- full handshakes
# s_time's own summary: "N connections in T real seconds"; the rate uses our wall clock.
echo -e "server\tconns\twall_ms\tticks\tline" >"$work/hs.tsv"
hs_one() { # NAME PORT PROCESS-KEY
	local c0 c1 w0 w1 line conns
	c0=$(cpu_now ${procs[$3]}) w0=$(date +%s%N)
	line=$(timeout $((HS_SECS + 20)) "${pin_load[@]}" openssl s_time -connect "127.0.0.1:$2" -new -time "$HS_SECS" \
		-cert "$pki/client-chain.crt" -key "$pki/client.key" -CAfile "$pki/root.crt" 2>&1 |
		grep -E 'connections in [0-9.]+ real seconds' | head -n 1) || true
	w1=$(date +%s%N) c1=$(cpu_now ${procs[$3]})
	conns=$(sed -n 's/^\([0-9]*\) connections in.*/\1/p' <<<"$line")
	echo -e "$1\t${conns:-0}\t$(((w1 - w0) / 1000000))\t$((${c1% *} - ${c0% *}))\t$line" >>"$work/hs.tsv"
	echo "mtls: handshakes $1: $line" >&2
}
echo "mtls: $(date +%T) handshakes" >&2
hs_one skiff "$in_mtls" skiff_server
hs_one nginx "$nginx_srv" ngx-server
hs_one haproxy "$hap_srv" haproxy-server
hs_one openssl "$ref_srv" s_server

for r in skiff_client skiff_server ngx-server ngx-client haproxy-server haproxy-client; do
	for p in ${procs[$r]}; do
		kill -0 "$p" 2>/dev/null || { echo "mtls.sh: $r (process $p) died during the run" >&2; exit 1; }
	done
done
hs_client1=$(stat_of "$c_admin" "cluster.outbound|$in_mtls||server.mtls.ssl.handshake")
hs_server1=$(stat_of "$s_admin" "listener.in_mtls.ssl.handshake")
rq_mtls=$(stat_of "$c_admin" "http.out_mtls.downstream_rq_total")
rq_in=$(stat_of "$s_admin" "http.in_mtls.downstream_rq_total") # 0 with a tcp_proxy inbound
if [ "$INBOUND" = hcm ] && [ "${rq_in:-0}" -lt 1 ]; then
	echo "mtls.sh: the server sidecar's HCM inbound over TLS counted no request" >&2
	exit 1
fi

# ---------------------------------------------------------------- report
echo "mtls: $(date +%T) done" >&2
rev="commit $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$here/.." status --porcelain -- . ':!bench' ':!run' 2>/dev/null)" ]; then
	rev+=" with uncommitted changes outside bench/"
fi
envs=$( (env | grep -E '^MTLS_' || true) | sort | tr '\n' ' ')
labels=$(for s in "${setups[@]}"; do printf '%s\t%s\n' "$s" "${label[$s]}"; done)
section=$work/mtls.md
python3 - "$work" "$section" "$(getconf CLK_TCK)" "$labels" "$pinning" "$INBOUND" "$CONNS" "$RATE" \
	"$RATE_DURATION" "$DURATION" "$ROUNDS" "$HS_SECS" "$envs" "$(date -u +%Y-%m-%d)" "$rev" "$load0" \
	"$(cut -d' ' -f1 /proc/loadavg)" "$RT" "$hs_client1" "$hs_server1" "$rq_mtls" "$rq_in" \
	"$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r)" \
	"$(openssl version | cut -d' ' -f1-2)" <<'PY'
import re, statistics, sys
(work, out, hz, labels, pinning, inbound, conns, rate, rate_dur, dur, rounds, hs_secs, envs, date, rev,
 load0, load1, rt, hs_c, hs_s, rq_mtls, rq_in, machine, sslver) = sys.argv[1:]
hz = int(hz)
label = dict(l.split("\t", 1) for l in labels.splitlines())
order = list(label)

def kv(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))

runs = []
with open(f"{work}/runs.tsv") as f:
    next(f)
    for l in f:
        s, kind, ticks, ns, line = l.rstrip("\n").split("\t", 4)
        d = kv(line)
        runs.append(dict(s=s, kind=kind, ticks=int(ticks), ns=int(ns), total=int(d.get("total", 0)),
                         n=int(d.get("n", 0)), rps=float(d.get("rps", 0)), p99=float(d.get("p99_us", 0)),
                         errors=int(d.get("errors", 0)) + int(d.get("unfinished", 0)), late=int(d.get("late", 0))))

A = {}
for s in order:
    c = [r for r in runs if r["s"] == s and r["kind"] == "closed"]
    q = [r for r in runs if r["s"] == s and r["kind"] == "rate"]
    with open(f"{work}/{s}.samples") as fh:
        v = sorted(float(x) for x in fh)
    qtot = sum(r["total"] for r in q)
    ctot = sum(r["total"] for r in c)
    A[s] = dict(crps=statistics.median(r["rps"] for r in c), clo=min(r["rps"] for r in c), chi=max(r["rps"] for r in c),
                qrps=statistics.median(r["rps"] for r in q),
                p50=v[len(v) // 2], p99=v[int(len(v) * 0.99)], n=len(v),
                p99lo=min(r["p99"] for r in q), p99hi=max(r["p99"] for r in q),
                cpu_rate=sum(r["ns"] for r in q) / 1e3 / qtot if qtot else None,
                cpu_closed=sum(r["ticks"] for r in c) / hz * 1e6 / ctot if ctot else None,
                errors=sum(r["errors"] for r in c + q), late=sum(r["late"] for r in q))
d99 = A["direct"]["p99"]
d50 = A["direct"]["p50"]
inb = ("`tcp_proxy` (MTLS_INBOUND=tcp: TLS terminated on an L4 chain)" if inbound == "tcp" else
       "`http_connection_manager` (codec AUTO) + router to the app's cluster: TLS terminated on an HTTP chain (MTLS_INBOUND=hcm, the default)")
o = ["## mTLS\n"]
o.append(f"Command: `{envs}bench/mtls.sh build` (also run by `./run bench`), {date}, skiff at {rev}, {machine}, "
         f"release build, {sslver}. Load tool: bench/tools/l7load.c.\n")
o.append(f"HTTP/1.1 keep-alive GET of a 1024-byte file from a backend nginx (1 worker), through a pair of sidecars "
         f"(client sidecar → server sidecar → app), each one process with one worker/thread; {pinning}. "
         f"skiff: the client sidecar's outbound listener is an HCM (codec AUTO, router) to a static cluster; "
         f"for mTLS the cluster has an UpstreamTlsContext (client certificate, CA, exact SAN `spiffe://cluster.local/ns/default/sa/server`, "
         f"Istio's SNI and ALPN `istio-peer-exchange,istio`, TLS 1.2–1.3); the server sidecar's inbound listener has "
         f"tls_inspector and a chain on transport_protocol `tls` with a DownstreamTlsContext (require_client_certificate, "
         f"SAN prefix `spiffe://cluster.local/`, ALPN `h2,http/1.1`); its inbound chain is {inb}. "
         "nginx pair: `proxy_pass https://` to an upstream with `keepalive 64`, `proxy_ssl_certificate`, `proxy_ssl_verify on` "
         "(`proxy_ssl_name server.default.svc`: nginx matches DNS names, not URI SANs), `proxy_ssl_session_reuse on` → "
         "`listen ssl`, `ssl_verify_client on` → the backend (keepalive 64). HAProxy pair: `server ... ssl crt ca-file "
         "verify required verifyhost server.default.svc`, `http-reuse always` → `bind ... ssl crt ca-file verify required`. "
         "Certificates from tests/tls/ca.sh (EC P-256; the server's leaf also carries the DNS SAN for nginx/HAProxy). "
         f"**p50/p99 @{rate}/s**: open loop at a fixed {rate} req/s over {conns} connections, {rounds} round(s) of {rate_dur} s "
         "per setup, setups interleaved (order rotated each round), latency from each request's due time, percentiles "
         "of all rounds' samples pooled (brackets: lowest–highest p99 of a single round)"
         + ("; the load tool, the backend and the proxies run SCHED_FIFO (chrt) during these runs" if rt == "1" else "") +
         f". **req/s @{rate}/s**: the rate achieved (median of rounds). **max req/s**: closed loop, each connection one "
         f"request in flight, {dur} s per round, median (min–max). **CPU µs/req**: both sidecars' scheduler run time "
         "(/proc/PID/task/*/schedstat) during the fixed-rate runs ÷ responses.\n")
o.append(f"| setup | req/s @{rate}/s | p50 µs | p99 µs | p99 added over direct µs | both proxies' CPU µs/req @{rate}/s | max req/s (closed loop) | errors |")
o.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
for s in order:
    a = A[s]
    added = "–" if s == "direct" else "%+.0f" % (a["p99"] - d99)
    cpu = "–" if s == "direct" or a["cpu_rate"] is None else "%.1f" % a["cpu_rate"]
    o.append(f"| {label[s]} | {a['qrps']:.0f} | {a['p50']:.0f} | {a['p99']:.0f} ({a['p99lo']:.0f}–{a['p99hi']:.0f}) | "
             f"{added} | {cpu} | {a['crps']:.0f} ({a['clo']:.0f}–{a['chi']:.0f}) | {a['errors']} |")
o.append("")
o.append(f"Samples per setup: {A['direct']['n']}. Requests the load tool sent more than 1 ms late (its own stalls, they "
         "inflate p99 whatever the proxy does): " + ", ".join(f"{label[s]} {A[s]['late']} ({100 * A[s]['late'] / max(A[s]['n'], 1):.2f}%)" for s in order) +
         ": where that nears 1% of the samples, the p99 measures this VM's stalls as much as the proxies. Both sidecars of a "
         "pair share CPU 1, so each request waits for two processes in turn on one core (in a pod they would usually run "
         "on different cores); the plaintext pair's row is the cost of that two-hop path without TLS.\n")

# handshakes
o.append(f"### Full TLS handshakes against the server sidecar's TLS port\n")
o.append(f"`openssl s_time -connect ... -new -time {hs_secs} -cert client -key client -CAfile root` (one client process, "
         "full handshakes only, no session reuse, TLS 1.3 with the client certificate, ECDHE X25519 + ECDSA P-256, "
         "nothing sent after the handshake), client on CPU 0, server on CPU 1. **per CPU-second**: handshakes ÷ the "
         f"server process's utime+stime during the run ({1000 // hz} ms ticks) = handshakes per second per core of the server "
         "when it is the bottleneck; the single s_time client is usually the bottleneck here, so the handshakes/s column "
         "is the client's limit and the per-core figure is the one to compare."
         + (" skiff's inbound chain is tcp_proxy: it opens a backend connection for each TLS connection; nginx and "
            "HAProxy (HTTP frontends) do not, as nothing is requested." if inbound == "tcp" else "") + "\n")
o.append("| server | handshakes | wall s | handshakes/s | server CPU s | handshakes per server CPU-second |")
o.append("| --- | --- | --- | --- | --- | --- |")
H = {}
with open(f"{work}/hs.tsv") as f:
    next(f)
    for l in f:
        name, n, wall, ticks, line = l.rstrip("\n").split("\t", 4)
        n, wall, ticks = int(n), int(wall) / 1000, int(ticks)
        cpu = ticks / hz
        H[name] = n / cpu if cpu else None
        lab = {"skiff": "skiff server sidecar (DownstreamTlsContext)", "nginx": "nginx `listen ssl` + `ssl_verify_client on`",
               "haproxy": "HAProxy `bind ssl ... verify required`",
               "openssl": "reference: `openssl s_server -Verify 1` (same certificates, one connection at a time)"}[name]
        o.append(f"| {lab} | {n} | {wall:.1f} | {n / wall:.0f} | {cpu:.2f} | {'–' if not cpu else '%.0f' % (n / cpu)} |")
o.append("")

# target
sk = A["skiff_mtls"]
add = sk["p99"] - d99
o.append("### skiff against the mTLS target\n")
o.append("| target | measured | verdict |")
o.append("| --- | --- | --- |")
o.append(f"| mTLS pair adds ≤ 100 µs p99 over direct at {rate} rps | {sk['p99']:.0f} vs {d99:.0f} µs: {add:+.0f} µs "
         f"(plaintext pair {A['skiff_plain']['p99'] - d99:+.0f}, nginx {A['nginx']['p99'] - d99:+.0f}, "
         f"HAProxy {A['haproxy']['p99'] - d99:+.0f}) | {'**met**' if add <= 100 else '**not met**'} |")
pl = A["skiff_plain"]
o.append(f"| (for reference: what TLS adds to skiff's pair, mTLS pair over the plaintext pair) | p99 {sk['p99'] - pl['p99']:+.0f} µs, "
         f"p50 {sk['p50'] - pl['p50']:+.0f} µs, CPU {sk['cpu_rate'] - pl['cpu_rate']:+.1f} µs/req for both sidecars | – |")
o.append("")
o.append(f"skiff's mTLS pair did TLS for real: the client sidecar counted {hs_c} upstream TLS handshakes "
         f"(`cluster.<mtls cluster>.ssl.handshake`: its pooled connections, reused across requests) and "
         f"{rq_mtls} requests; the server sidecar's TLS listener {hs_s} handshakes (`listener.in_mtls.ssl.handshake`, "
         "s_time's included)" + (f" and its HCM over TLS {rq_in} requests (`http.in_mtls.downstream_rq_total`)" if inbound == "hcm" else "") + ". Before measuring, each server sidecar's TLS port refused curl without a client "
         "certificate and answered curl with one. Load average (1 min) at the start and end of this run: "
         f"{load0} / {load1}. This 2-vCPU VM is shared with other sessions: compare setups within one run.\n")
open(out, "w").write("\n".join(o))
PY

if [ -n "$out" ]; then
	cp "$section" "$out"
else
	cat "$section"
	python3 - "$here/RESULTS.md" "$section" <<'PY'
import os, sys
path, sec = sys.argv[1:]
new = open(sec).read().rstrip("\n") + "\n"
old = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
lines = old.splitlines(keepends=True)
start = next((i for i, l in enumerate(lines) if l.startswith("## mTLS")), None)
if start is None:
    text = old.rstrip("\n") + "\n\n" + new
else:
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    rest = "".join(lines[end:])
    text = "".join(lines[:start]) + new + ("\n" + rest if rest else "")
open(path, "w").write(text)
PY
	echo "mtls.sh: the mTLS section of $here/RESULTS.md is updated" >&2
fi
