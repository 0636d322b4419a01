#!/usr/bin/env bash
# xDS on loopback: how fast skiff applies large configurations pushed over ADS, what they
# cost in memory, and what re-pushing them does to traffic. skiff (--concurrency 2) takes
# everything from the test xDS server (build/xds/server/skiff-xds-server --log-times) over a
# unix socket, in SotW (api_type GRPC) and in Delta (DELTA_GRPC). The resources are
# Istio-shaped (bench/tools/xdsgen.py): EDS clusters "outbound|9080|v1|svc-<i>..." with
# circuit_breakers, istio metadata, the metadata_exchange filter and transport_socket_matches,
# ClusterLoadAssignments with Istio's locality and endpoint metadata, bind_to_port: false
# listeners "0.0.0.0_<port>" each with rds to its own RouteConfiguration, and one real
# listener (127.0.0.1, route weighted between two EDS clusters in front of an nginx that
# answers "a" on one port and "b" on another). They are encoded once by bench/tools/xdsraw
# and served as raw bytes (the server's own JSON loader needs seconds per reload at 10k).
#
# Per repetition (a fresh skiff for each; modes and sizes interleaved):
#   1. CDS+EDS  the base (the real listener and its two clusters) -> + N clusters × XDS_EPS
#               endpoints, and the real v1 cluster's EDS service changed (its endpoint is
#               nginx "b" instead of "a"): traffic switches once the changed cluster has its
#               endpoints, which come with skiff's subscription to the new names
#   2. LDS+RDS  + XDS_LISTENERS listeners with their routes, and the real listener's route
#               name changed (the new route sends to v2: "a")
# Timed from the server's log (wall clock, µs): each response from the moment the server
# sent it (SEND) to the client's ACK; the whole push from its first response to the last
# ACK; and "traffic": from the first response to the first answer through the real listener
# that shows the new configuration (bench/tools/xdsprobe: a new connection every ~1 ms).
# Only the parent type changes in a push (CDS in 1, LDS in 2), never an already subscribed
# EDS/RDS resource with it: in SotW the test server loses a subscription change that arrives
# with a stale nonce (it records the names, does not answer, then ignores the ACK carrying
# the same names), which would leave the new names unanswered until the next push.
# Memory: skiff's VmRSS before and after step 1 (and heap "allocated" from admin /memory);
# one more run at the largest N with 1 endpoint per cluster separates the cost of a cluster
# from that of an endpoint. Churn: with the largest N, its endpoints and the listeners
# applied, XDS_RATE req/s HTTP/1.1 keep-alive (bench/tools/l7load --rate, XDS_CONNS
# connections) through the real listener for XDS_CHURN_SECS s each: quiet (no pushes);
# control (the server re-reads unchanged files every second: same server work, nothing
# sent); churn (every second the server re-reads the cluster file, alternating two variants
# that change every cluster and every assignment, and pushes them); quiet again once skiff
# has answered the last push.
#
# Usage: bench/xds.sh BUILD_DIR [OUT.md]
#   with OUT.md: the xDS section is written there; without: printed, and it replaces the
#   "## xDS" section of bench/RESULTS.md (or is appended).
# Environment: XDS_SIZES ("1000 10000"), XDS_EPS (10), XDS_LISTENERS (1000), XDS_MODES
#   ("sotw delta"), XDS_REPS (3), XDS_TIME (300: the run's wall-clock budget in seconds: the
#   first repetition of everything always runs, a further one only if it fits, judging by
#   how long the previous one of the same size and mode took; the tables say how many ran),
#   XDS_APPLY_TIMEOUT (60: the longest wait for one push to be answered), XDS_CHURN_SECS (8),
#   XDS_CHURN_MODE (sotw), XDS_RATE (1000), XDS_CONNS (16), XDS_RT (1: nginx, the load tools
#   and the probe run SCHED_FIFO when allowed), XDS_KEEP_WORK (0; 1: keep the logs and files).
set -euo pipefail
build=${1:?usage: bench/xds.sh BUILD_DIR [OUT.md]}
build=$(cd "$build" && pwd)
out=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
skiff=$build/proxy/skiff
server=$build/xds/server/skiff-xds-server
raw=$build/bench/xdsraw
probe=$build/bench/xdsprobe
load=$build/bench/l7load
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # not a version manager's shim: ~0.05 s a start, not ~0.6
xgen=("$PY" "$here/tools/xdsgen.py")
xlog=("$PY" "$here/tools/xdslog.py")

SIZES=${XDS_SIZES:-1000 10000}
EPS=${XDS_EPS:-10}
NLIS=${XDS_LISTENERS:-1000}
MODES=${XDS_MODES:-sotw delta}
REPS=${XDS_REPS:-3}
BUDGET=${XDS_TIME:-300}
APPLY_TIMEOUT=${XDS_APPLY_TIMEOUT:-60}
CHURN_SECS=${XDS_CHURN_SECS:-8}
CHURN_MODE=${XDS_CHURN_MODE:-sotw}
RATE=${XDS_RATE:-1000}
CONNS=${XDS_CONNS:-16}
RT=${XDS_RT:-1}
NMAX=$(tr ' ' '\n' <<<"$SIZES" | sort -n | tail -1)

for b in "$skiff" "$server"; do
	[ -x "$b" ] || { echo "xds.sh: $b missing (./run build)" >&2; exit 1; }
done
for b in "$raw" "$probe" "$load"; do
	[ -x "$b" ] || { echo "xds.sh: $b missing (configure with -Dbench=true: ./run bench)" >&2; exit 1; }
done
for t in nginx curl python3 taskset; do
	command -v "$t" >/dev/null || { echo "xds.sh: needs $t" >&2; exit 1; }
done

work=$(mktemp -d)
chmod 755 "$work"
# the binaries this run measures, copied: a rebuild during the run (other work in this tree)
# must not swap them underneath
mkdir -p "$work/bin"
for b in skiff server; do
	if ! cp "${!b}" "$work/bin/$b" || ! "$work/bin/$b" --help >/dev/null 2>&1; then
		echo "xds.sh: ${!b} is not usable (being rebuilt?)" >&2
		rm -rf "$work"
		exit 1
	fi
	printf -v "$b" '%s' "$work/bin/$b"
done
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ "${XDS_KEEP_WORK:-0}" = 1 ]; then echo "xds.sh: work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
t_start=$SECONDS
log() { echo "xds: $(date +%T) $*" >&2; }

# Placement (as bench/l7.sh): skiff on CPU 1 (its 2 workers and its main thread, which
# applies the configuration, share it), at nice -10 against the other work on this machine;
# nginx, the xDS server, the probe and the load tool on CPU 0, so that the server's file
# reloads do not take skiff's CPU; nginx, the probe and the load tool SCHED_FIFO, so that
# those reloads do not delay them either.
if [ "$(nproc)" -ge 2 ]; then
	pin=(taskset -c 0) pin_skiff=(taskset -c 1)
	placement="skiff pinned to CPU 1; nginx, the xDS server, the probe and the load tool to CPU 0 (taskset)"
else
	pin=() pin_skiff=()
	placement="one CPU: nothing pinned"
fi
rt=()
if [ "$RT" = 1 ] && chrt -f 10 true 2>/dev/null; then
	rt=(chrt -f 10)
	placement+="; nginx, the probe and the load tool SCHED_FIFO (chrt -f 10), so that the xDS server's file reloads on their CPU do not delay them"
else
	placement+="; nginx, the probe and the load tool SCHED_OTHER (SCHED_FIFO not allowed)"
fi
skiff_nice=()
if [ "$(nice -n -10 nice 2>/dev/null)" = -10 ]; then
	skiff_nice=(nice -n -10)
	placement+="; skiff SCHED_OTHER at nice -10: its main thread, which applies the configuration, and its workers compete for their CPU as in a sidecar, and less with other processes of this shared VM; the server SCHED_OTHER, nice 0"
else
	placement+="; skiff and the server SCHED_OTHER, nice 0"
fi

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
alive() { [ -e "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
forget() { # PID: no longer cleaned up at exit
	local rest=() p
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || rest+=("$p"); done
	pids=("${rest[@]+"${rest[@]}"}")
}
load0=$(cut -d' ' -f1 /proc/loadavg)
steal() { awk '/^cpu / {print $9}' /proc/stat; }
steal0=$(steal)

# ---------------------------------------------------------------- resources
log "generating resources (sizes $SIZES × $EPS endpoints, $NLIS listeners)"
port_a=$(free_port)
port_b=$(free_port)
port_l=$(free_port)
R=$work/res
mkdir -p "$R"
gen() { # NAME ARGS...: xdsgen.py ARGS -> $R/NAME.jsonl -> xdsraw -> $R/NAME.json
	local name=$1
	shift
	"${xgen[@]}" "$1" "$R/$name.jsonl" "${@:2}" && "$raw" "$R/$name.jsonl" "$R/$name.json" && rm -f "$R/$name.jsonl"
}
t0=$SECONDS
gen_pids=()
for n in $SIZES; do
	gen "c$n" clusters "$n" "$EPS" &
	gen_pids+=("$!")
done
gen "c${NMAX}x1" clusters "$NMAX" 1 &
gen_pids+=("$!")
gen "c${NMAX}v1" clusters "$NMAX" "$EPS" --variant 1 &
gen_pids+=("$!")
gen lis listeners "$NLIS" 20000 "$(tr ' ' '\n' <<<"$SIZES" | sort -n | head -1)"
gen empty empty
gen real0 real "$port_l" 0 "$port_a" "$port_b" # -> "a"
gen real1 real "$port_l" 1 "$port_a" "$port_b" # CDS: v1's EDS service changes -> "b"
gen real2 real "$port_l" 2 "$port_a" "$port_b" # LDS: the listener's route changes -> v2 -> "a"
for p in "${gen_pids[@]}"; do wait "$p" || { echo "xds.sh: resource generation failed" >&2; exit 1; }; done
gen_secs=$((SECONDS - t0))
declare -A fsize
for f in "$R"/*.json; do fsize[$(basename "$f" .json)]=$(stat -c %s "$f"); done

# ---------------------------------------------------------------- nginx: "a" and "b"
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGX
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server { listen 127.0.0.1:$port_a; location / { return 200 "a"; } }
  server { listen 127.0.0.1:$port_b; location / { return 200 "b"; } }
}
NGX
"${rt[@]}" "${pin[@]}" nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
pids+=("$!")
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port_b/" && break; sleep 0.05; done
[ "$(curl -s "http://127.0.0.1:$port_a/")" = a ] || { echo "xds.sh: nginx does not answer" >&2; cat "$work/nginx/error.log" >&2; exit 1; }

# ---------------------------------------------------------------- the xDS server
sock=$work/xds.sock
xl=$work/server.log
setf() { # REAL CLUSTERS LISTENERS: what the server serves from its next reload on
	cp "$R/$1.json" "$work/cur-real.json.tmp" && mv -f "$work/cur-real.json.tmp" "$work/cur-real.json"
	cp "$R/$2.json" "$work/cur-c.json.tmp" && mv -f "$work/cur-c.json.tmp" "$work/cur-c.json"
	cp "$R/$3.json" "$work/cur-l.json.tmp" && mv -f "$work/cur-l.json.tmp" "$work/cur-l.json"
}
setf real0 empty empty
# (its allocator keeps what it frees: every reload then reuses the same memory instead of
# faulting in ~100 MB anew, which on this VM also stalls the other processes on its CPU)
GLIBC_TUNABLES=glibc.malloc.trim_threshold=4294967295:glibc.malloc.mmap_threshold=33554432:glibc.malloc.top_pad=268435456 \
# the clusters' tlsMode-istio sockets name SDS `default` and `ROOTCA` on `sds-grpc`: the same
# server serves them (StreamSecrets), or the clusters would warm forever
bash "$here/../tests/tls/ca.sh" "$work/pki" ca >/dev/null 2>&1 &&
	bash "$here/../tests/tls/ca.sh" "$work/pki" workload bench default bench --days 2 >/dev/null 2>&1 ||
	{ echo "xds.sh: tests/tls/ca.sh failed" >&2; exit 1; }
"$PY" - "$work/pki" "$work/secrets.json" <<'PY'
import base64, json, sys
d, out = sys.argv[1], sys.argv[2]
b64 = lambda p: base64.b64encode(open(f"{d}/{p}", "rb").read()).decode()
t = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
json.dump([{"@type": t, "name": "default", "tls_certificate": {"certificate_chain": {"inline_bytes": b64("bench-chain.crt")},
                                                               "private_key": {"inline_bytes": b64("bench.key")}}},
           {"@type": t, "name": "ROOTCA", "validation_context": {"trusted_ca": {"inline_bytes": b64("root.crt")}}}],
          open(out, "w"))
PY
	"${pin[@]}" "$server" --listen "unix:$sock" --log "$xl" --log-times \
	"$work/cur-real.json" "$work/cur-c.json" "$work/cur-l.json" "$work/secrets.json" 2>"$work/server.err" &
server_pid=$!
pids+=("$server_pid")
for _ in $(seq 1 200); do grep -q ' READY ' "$xl" 2>/dev/null && break; sleep 0.05; done
grep -q ' READY ' "$xl" || { echo "xds.sh: the xDS server did not start" >&2; cat "$xl" "$work/server.err" >&2; exit 1; }
GEN=1
last_version() { sed -n 's/^[0-9.]* STORE version=v\([0-9]*\) .*/\1/p' "$xl" | tail -1; }
push() { # the server re-reads its files (the next version) and has it: GEN (bounded wait)
	local n0 f0
	n0=$(grep -c ' STORE ' "$xl")
	f0=$(grep -c ' LOAD_FAILED ' "$xl" || true)
	kill -HUP "$server_pid"
	for _ in $(seq 1 $((APPLY_TIMEOUT * 20))); do
		if [ "$(grep -c ' STORE ' "$xl")" -gt "$n0" ]; then
			GEN=$(last_version)
			return 0
		fi
		[ "$(grep -c ' LOAD_FAILED ' "$xl" || true)" -gt "$f0" ] && break
		sleep 0.05
	done
	echo "xds.sh: the xDS server did not load its files: $(tail -n 2 "$xl")" >&2
	exit 1
}

# ---------------------------------------------------------------- skiff
grpc_cluster() { # NAME: a gRPC cluster on the server's socket
	echo "{\"name\": \"$1\", \"type\": \"STATIC\", \"connect_timeout\": \"1s\",
   \"load_assignment\": {\"cluster_name\": \"$1\", \"endpoints\": [{\"lb_endpoints\": [
     {\"endpoint\": {\"address\": {\"pipe\": {\"path\": \"$sock\"}}}}]}]},
   \"typed_extension_protocol_options\": {\"envoy.extensions.upstreams.http.v3.HttpProtocolOptions\": {
     \"@type\": \"type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\",
     \"explicit_http_config\": {\"http2_protocol_options\": {}}}}}"
}
bootstrap() { # API_TYPE ADMIN_PORT
	cat <<EOF
{"node": {"id": "sidecar~127.0.0.1~bench.default~default.svc.cluster.local", "cluster": "bench.default"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $2}}},
 "dynamic_resources": {
   "ads_config": {"api_type": "$1", "set_node_on_first_message_only": true, "transport_api_version": "V3",
     "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
   "cds_config": {"ads": {}, "resource_api_version": "V3", "initial_fetch_timeout": "0s"},
   "lds_config": {"ads": {}, "resource_api_version": "V3", "initial_fetch_timeout": "0s"}},
 "static_resources": {"clusters": [$(grpc_cluster xds-grpc), $(grpc_cluster sds-grpc)]}}
EOF
}
skiff_pid=
admin=
start_skiff() { # MODE TAG: skiff_pid, admin; waits for LIVE and traffic through the real listener
	local api=GRPC
	[ "$1" = delta ] && api=DELTA_GRPC
	admin=$(free_port)
	bootstrap "$api" "$admin" >"$work/boot-$2.json"
	"${skiff_nice[@]}" "${pin_skiff[@]}" "$skiff" -c "$work/boot-$2.json" --concurrency 2 -l warning --disable-hot-restart >"$work/skiff-$2.log" 2>&1 &
	skiff_pid=$!
	pids+=("$skiff_pid")
	for _ in $(seq 1 200); do
		[ "$(curl -s --max-time 1 "http://127.0.0.1:$admin/ready" 2>/dev/null)" = LIVE ] &&
			[ "$(curl -s --max-time 1 "http://127.0.0.1:$port_l/" 2>/dev/null)" = a ] && return 0
		alive "$skiff_pid" || break
		sleep 0.05
	done
	echo "xds.sh: skiff ($1) did not go LIVE and serve the base configuration; its log:" >&2
	tail -n 20 "$work/skiff-$2.log" >&2
	exit 1
}
skiff_exit=
stop_skiff() { # sets skiff_exit: its exit status ("killed" when SIGTERM was not enough)
	skiff_exit=
	if ! alive "$skiff_pid"; then
		wait "$skiff_pid" 2>/dev/null && skiff_exit=0 || skiff_exit=$?
	else
		kill -TERM "$skiff_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do alive "$skiff_pid" || break; sleep 0.1; done
		if alive "$skiff_pid"; then
			kill -KILL "$skiff_pid" 2>/dev/null || true
			wait "$skiff_pid" 2>/dev/null || true
			skiff_exit=killed
		else
			wait "$skiff_pid" 2>/dev/null && skiff_exit=0 || skiff_exit=$?
		fi
	fi
	forget "$skiff_pid"
}
heap() { # skiff's heap in use (admin /memory "allocated"), bytes; "" when it does not answer
	curl -s --max-time 20 "http://127.0.0.1:$admin/memory" 2>/dev/null |
		"$PY" -c 'import json,sys; print(json.load(sys.stdin)["allocated"])' 2>/dev/null || true
}
probe_pid=
start_probe() { # FILE
	"${rt[@]}" "${pin[@]}" "$probe" "127.0.0.1:$port_l" 1000 600 "$1" &
	probe_pid=$!
	pids+=("$probe_pid")
}
stop_probe() {
	kill -TERM "$probe_pid" 2>/dev/null || true
	wait "$probe_pid" 2>/dev/null || true
	forget "$probe_pid"
}
switched() { # FILE T0 BODY: the first time at or after T0 the probe saw BODY ("" if never)
	awk -v t0="$2" -v b="$3" '$1 >= t0 && $2 == b { print $1; exit }' "$1"
}
wait_switch() { # FILE T0 BODY SECONDS: until the probe saw BODY (bounded)
	for _ in $(seq 1 $(($4 * 50))); do
		[ -n "$(switched "$1" "$2" "$3")" ] && return 0
		sleep 0.02
	done
	return 1
}

res=$work/results.jsonl
: >"$res"
# rep MODE N EPS REP KEEP: one fresh skiff: the base, then N clusters (step 1), then the
# listeners (step 2, skipped with EPS=1: the memory run). KEEP=1 leaves skiff running.
rep() {
	local mode=$1 n=$2 eps=$3 r=$4 keep=$5 tag cfile rss0 rss1 rss2="" heap0 heap1 heap2="" t1 t2="" g1 g2=""
	local s1 s2="" pf
	tag="$mode-$n-$eps-$r"
	cfile=c$n
	[ "$eps" = 1 ] && cfile=c${n}x1
	log "$tag: base"
	setf real0 empty empty
	push
	start_skiff "$mode" "$tag"
	sleep 0.3
	rss0=$(rss_kb "$skiff_pid")
	heap0=$(heap)
	pf=$work/probe-$tag.txt
	echo '{}' >"$work/$tag.step2.json"
	start_probe "$pf"
	sleep 0.2
	log "$tag: step 1, $n clusters × $eps endpoints (CDS+EDS)"
	setf real1 "$cfile" empty
	t1=$(now)
	push
	g1=$GEN
	"${xlog[@]}" wait "$xl" "v$g1" cds 1 "$APPLY_TIMEOUT" "$skiff_pid" >"$work/$tag.step1.json"
	wait_switch "$pf" "$t1" b 2 || true
	s1=$(switched "$pf" "$t1" b)
	sleep 0.5
	rss1=$(rss_kb "$skiff_pid")
	heap1=$(heap)
	if [ "$eps" != 1 ] && alive "$skiff_pid"; then
		log "$tag: step 2, $NLIS listeners and routes (LDS+RDS)"
		setf real2 "$cfile" lis
		t2=$(now)
		push
		g2=$GEN
		"${xlog[@]}" wait "$xl" "v$g2" lds 1 "$APPLY_TIMEOUT" "$skiff_pid" >"$work/$tag.step2.json"
		wait_switch "$pf" "$t2" a 2 || true
		s2=$(switched "$pf" "$t2" a)
		sleep 0.5
		rss2=$(rss_kb "$skiff_pid")
		heap2=$(heap)
	fi
	stop_probe
	skiff_exit=running
	[ "$keep" = 1 ] || stop_skiff
	"$PY" - "$res" "$work/$tag" "$pf" <<PY
import json, sys
def num(x):
    return float(x) if x not in ("", None) else None
res, base, pf = sys.argv[1:]
d = dict(tag="$tag", mode="$mode", n=$n, eps=$eps, rep=$r, rss0=num("$rss0"), rss1=num("$rss1"), rss2=num("$rss2"),
         heap0=num("$heap0"), heap1=num("$heap1"), heap2=num("$heap2"), t1=num("$t1"), t2=num("$t2"),
         switch1=num("$s1"), switch2=num("$s2"), step1=json.load(open(base + ".step1.json")),
         step2=json.load(open(base + ".step2.json")), exit="$skiff_exit", probe=open(pf).read().splitlines()[-40:])
open(res, "a").write(json.dumps(d) + "\n")
def brief(st):
    r = st.get("responses", [])
    return st.get("why", "-") + " " + " ".join("%s %.0fms" % (x["type"], (x["t_ans"] - x["t_send"]) * 1e3)
                                             if x["t_ans"] else x["type"] + " -" for x in r)
print("xds: $tag: step 1: " + brief(d["step1"]) + (("; step 2: " + brief(d["step2"])) if d["step2"] else ""),
      file=sys.stderr)
PY
	if ! alive "$skiff_pid" && [ "$skiff_exit" = running ]; then
		stop_skiff
	fi
}

# ---------------------------------------------------------------- churn
churn_dir=$work/churn
mkdir -p "$churn_dir"
hupper() { # KIND END_NS: until END_NS (date +%s%N), once a second, the server re-reads its
	# files (KIND churn: the cluster file alternates between its two variants first); a
	# reload that takes longer than a second delays the next (no signal is sent while the
	# server is still reading, so that no two coalesce)
	local v=1 t
	while [ "$(date +%s%N)" -lt "$2" ]; do
		t=$(date +%s%N)
		if [ "$1" = churn ]; then
			if [ "$v" = 1 ]; then setf real2 "c${NMAX}v1" lis; v=0; else setf real2 "c$NMAX" lis; v=1; fi
		fi
		push
		echo "$t" >>"$churn_dir/$1.hups"
		t=$((t + 1000000000 - $(date +%s%N)))
		[ "$t" -gt 0 ] && sleep "$(printf '%d.%09d' $((t / 1000000000)) $((t % 1000000000)))"
	done
}
churn() { # skiff (from the kept repetition) holds NMAX clusters, their endpoints, the listeners
	local phase line t0 t1 hp v
	log "churn: warm-up"
	"${rt[@]}" "${pin[@]}" "$load" --rate "$RATE" "127.0.0.1:$port_l/churn" "$CONNS" 1 >/dev/null || true
	for phase in quiet control churn; do
		log "churn: $phase, $CHURN_SECS s at $RATE req/s"
		hp=
		t0=$(now)
		if [ "$phase" != quiet ]; then
			hupper "$phase" "$(($(date +%s%N) + CHURN_SECS * 1000000000))" &
			hp=$!
			pids+=("$hp")
		fi
		line=$("${rt[@]}" "${pin[@]}" "$load" --rate "$RATE" --samples "$churn_dir/$phase.samples" \
			"127.0.0.1:$port_l/churn" "$CONNS" "$CHURN_SECS") || true
		t1=$(now)
		if [ -n "$hp" ]; then
			wait "$hp" 2>/dev/null || true
			forget "$hp"
		fi
		echo "$line" >"$churn_dir/$phase.line"
		echo "$t0 $t1" >"$churn_dir/$phase.window"
		log "churn: $phase: $line"
	done
	GEN=$(last_version)
	t1=$(cut -d' ' -f2 "$churn_dir/churn.window")
	# the last version that sent clusters (a reload that found the variant already sent sends nothing)
	v=$(sed -n 's/^[0-9.]* SEND .*envoy\.config\.cluster\.v3\.Cluster version=\(v[0-9]*\) .*/\1/p' "$xl" | tail -1)
	log "churn: waiting (at most $APPLY_TIMEOUT s) for skiff to answer the last push, $v"
	"${xlog[@]}" wait "$xl" "$v" cds 1 "$APPLY_TIMEOUT" "$skiff_pid" >"$churn_dir/caughtup.json" || true
	echo "$t1 $(now)" >"$churn_dir/after.window"
	rss_kb "$skiff_pid" >"$churn_dir/rss"
	# quiet again, once skiff has caught up (or given up on): the quiet baseline before and after
	log "churn: quiet2, $CHURN_SECS s at $RATE req/s"
	t0=$(now)
	line=$("${rt[@]}" "${pin[@]}" "$load" --rate "$RATE" --samples "$churn_dir/quiet2.samples" \
		"127.0.0.1:$port_l/churn" "$CONNS" "$CHURN_SECS") || true
	echo "$line" >"$churn_dir/quiet2.line"
	echo "$t0 $(now)" >"$churn_dir/quiet2.window"
	log "churn: quiet2: $line"
	for phase in quiet control churn after quiet2; do
		read -r t0 t1 <"$churn_dir/$phase.window"
		"${xlog[@]}" window "$xl" "$t0" "$t1" >"$churn_dir/$phase.json"
	done
}

# ---------------------------------------------------------------- runs
# repetition 1 of every (size, mode), the memory run, the churn; then more repetitions while
# XDS_TIME lasts (one is not started unless the previous one of its size and mode would fit)
declare -A took
for r in $(seq 1 "$REPS"); do
	for n in $SIZES; do
		for mode in $MODES; do
			key="$mode-$n"
			if [ "$r" -gt 1 ] && [ $((SECONDS - t_start + ${took[$key]:-0})) -gt "$BUDGET" ]; then
				log "$key: repetition $r skipped (XDS_TIME=$BUDGET s would be exceeded)"
				continue
			fi
			keep=0
			[ "$r" = 1 ] && [ "$n" = "$NMAX" ] && [ "$mode" = "$CHURN_MODE" ] && keep=1
			t0=$SECONDS
			rep "$mode" "$n" "$EPS" "$r" "$keep"
			took[$key]=$((SECONDS - t0))
			if [ "$keep" = 1 ]; then
				if alive "$skiff_pid"; then
					churn
				fi
				stop_skiff
				echo "$skiff_exit" >"$churn_dir/exit"
			fi
		done
	done
	if [ "$r" = 1 ]; then
		rep "${CHURN_MODE}" "$NMAX" 1 1 0 # the memory run: 1 endpoint per cluster
	fi
done
load1=$(cut -d' ' -f1 /proc/loadavg)
steal_s=$(( ($(steal) - steal0) / $(getconf CLK_TCK) ))
total_secs=$((SECONDS - t_start))
# skiff's own logs: anything it said at warning level or above
# (without the time and thread of each line, and without the "caught SIGTERM" of every stop)
cat "$work"/skiff-*.log 2>/dev/null | sed -E 's/^\[[^]]*\]\[[0-9]+\]//' | grep -v -e '^$' -e 'caught SIGTERM' |
	sort | uniq -c | sort -rn | head -n 8 >"$work/skiff-lines" || true
grep -E ' NACK ' "$xl" | head -n 5 >"$work/nacks" || true

# ---------------------------------------------------------------- report
log "report"
rev="commit $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$here/.." status --porcelain -- . ':!bench' ':!run' 2>/dev/null)" ]; then
	rev+=" with uncommitted changes outside bench/"
fi
envs=$( (env | grep -E '^XDS_' || true) | sort | tr '\n' ' ')
section=$work/xds.md
fsizes=$(for k in "${!fsize[@]}"; do echo "$k ${fsize[$k]}"; done)
"$PY" - "$res" "$churn_dir" "$section" "$envs" "$(date -u +%Y-%m-%d)" "$rev" \
	"$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r)" \
	"$SIZES" "$EPS" "$NLIS" "$MODES" "$REPS" "$NMAX" "$CHURN_SECS" "$CHURN_MODE" "$RATE" "$CONNS" \
	"$placement" "$load0" "$load1" "$steal_s" "$total_secs" "$gen_secs" "$fsizes" "$work/skiff-lines" \
	"$work/nacks" "$BUDGET" <<'PY'
import json, os, statistics, sys
(res, cdir, out, envs, date, rev, machine, sizes, eps, nlis, modes, reps, nmax, csecs, cmode, rate, conns,
 placement, load0, load1, steal, total, gen_secs, fsizes, skiff_lines, nacks, budget) = sys.argv[1:]
eps, nlis, nmax, reps = int(eps), int(nlis), int(nmax), int(reps)
sizes = [int(x) for x in sizes.split()]
modes = modes.split()
runs = [json.loads(l) for l in open(res) if l.strip()]
fsize = dict((l.split()[0], int(l.split()[1])) for l in fsizes.splitlines() if l.strip())
MODE = {"sotw": "SotW", "delta": "Delta"}
problems = []

def ms(x):
    return None if x is None else x * 1e3

def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None

def cell(v, fmt="%.0f"):
    got = [x for x in v if x is not None]
    if not got:
        return "–"
    s = fmt % statistics.median(got)
    if len(got) > 1:
        s += f" ({fmt % min(got)}–{fmt % max(got)})"
    if len(got) < len(v):
        s += f" [{len(v) - len(got)} of {len(v)} not answered]"
    return s

def step_times(st, first, second, t_switch):
    """-> dict of ms: first type SEND->ACK, last second-type SEND->ACK, whole push, traffic"""
    rs = st.get("responses", []) if st else []
    if not rs:
        return dict(a=None, b=None, total=None, traffic=None, done=False)
    a = [r for r in rs if r["type"] == first]
    b = [r for r in rs if r["type"] == second]
    t0 = min(r["t_send"] for r in rs)
    ans = [r["t_ans"] for r in rs]
    return dict(
        a=ms(a[0]["t_ans"] - a[0]["t_send"]) if a and a[0]["t_ans"] else None,
        b=ms(b[-1]["t_ans"] - b[-1]["t_send"]) if b and b[-1]["t_ans"] else None,
        total=ms(max(ans) - t0) if st.get("done") and all(ans) else None,
        traffic=ms(t_switch - t0) if t_switch else None,
        done=st.get("done", False), why=st.get("why"),
        nacks=[r["nack"] for r in rs if r.get("nack")])

o = ["## xDS\n"]
o.append(f"Command: `{envs}bench/xds.sh build` (also run by `./run bench`), {date}, skiff at {rev}, {machine}, "
         f"release build. skiff `--concurrency 2 -l warning`, configured only over ADS from "
         "`build/xds/server/skiff-xds-server --log-times` on a unix socket (bootstrap: `ads_config` GRPC or "
         "DELTA_GRPC, `cds_config`/`lds_config` `{ads: {}, initial_fetch_timeout: 0s}`, static cluster `xds-grpc` "
         f"with HTTP/2 on a `pipe` endpoint). {placement}. The whole run took {total} s "
         f"(resource generation {gen_secs} s of it).\n")
o.append("Resources (bench/tools/xdsgen.py, Istio-shaped): EDS clusters `outbound|9080|v1|svc-<i>.default.svc.cluster.local` "
         "as istiod sends them (connect_timeout, LEAST_REQUEST, circuit_breakers thresholds, istio filter_metadata, "
         "the `istio.metadata_exchange` filter, transport_socket_matches `tlsMode-istio` (TLS with SDS secrets) and "
         "`tlsMode-disabled`); ClusterLoadAssignments with a locality and, per endpoint, health status, weight and "
         "Istio's metadata (workload, tlsMode), all endpoints distinct loopback addresses nothing listens on; "
         f"{nlis} `bind_to_port: false` listeners `0.0.0.0_<port>` (OUTBOUND, an HCM with `rds` to its own "
         "RouteConfiguration `<port>`, istiod's route shape with retry_policy); one real listener on 127.0.0.1 "
         "whose route is weighted between two EDS clusters in front of nginx (answers `a` on one port, `b` on "
         "another). Served as raw bytes (bench/tools/xdsraw encodes them once; the server's JSON loader needs "
         "seconds per reload at 10k clusters). Served sizes (encoded, base64 in JSON): "
         + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(fsize.items()) if v > 100000) + ".\n")
o.append("Each repetition starts a fresh skiff on the base configuration (the real listener, its route and its two "
         f"clusters), then: **step 1** pushes N clusters × {eps} endpoints (CDS, then EDS for the new names) and "
         "changes the real v1 cluster's EDS service name (its new endpoint is nginx `b`); **step 2** pushes the "
         f"{nlis} listeners (LDS, then RDS for their routes) and changes the real listener's route name (the new "
         "route sends to v2: `a`). Times are wall clock from the server's log: **CDS** / **LDS**: the server "
         "sending the response → skiff's ACK of it; **EDS** / **RDS**: the same for the last response of that type "
         "at that version (the answer to skiff's subscription to the new names); **whole push**: the first response "
         "of the version sent → the last ACK; **traffic**: the first response sent → the first answer through the "
         "real listener that shows the new configuration (bench/tools/xdsprobe: a new connection and one request "
         f"every ~1 ms). Median of the repetitions, (min–max). Repetitions: {reps} wanted; after the first of each, "
         f"one runs only if it fits in XDS_TIME={budget} s for the whole run: the reps column says how many ran. "
         "A push changes only the parent type (CDS, LDS), never an EDS/RDS resource skiff already subscribes to: "
         "in SotW the test server would then lose skiff's new subscription (it records the names of a request "
         "with a stale nonce without answering it, and then ignores the ACK that carries the same names: a bug of "
         "xds/server/ads_server.c, not of skiff).\n")

# ---- apply tables
for step, (first, second, label, fa, fb, fw) in {
        1: ("cds", "eds", "CDS+EDS", "CDS ms", "EDS ms", "clusters × endpoints"),
        2: ("lds", "rds", "LDS+RDS", "LDS ms", "RDS ms", "listeners + routes (clusters present)")}.items():
    o.append(f"### Step {step}: {label} (response sent → ACK, ms)\n")
    o.append(f"| {fw} | mode | reps | {fa} | {fb} | whole push ms | traffic switched ms |")
    o.append("| --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        for m in modes:
            rr = [r for r in runs if r["n"] == n and r["eps"] == eps and r["mode"] == m]
            if not rr:
                continue
            ts = [step_times(r["step%d" % step], first, second, r["switch%d" % step]) for r in rr]
            what = f"{n} × {eps}" if step == 1 else f"{nlis} listeners, {nlis + 1} routes ({n} clusters)"
            o.append(f"| {what} | {MODE[m]} | {len(rr)} | {cell([t['a'] for t in ts])} | {cell([t['b'] for t in ts])} | "
                     f"{cell([t['total'] for t in ts])} | {cell([t['traffic'] for t in ts])} |")
            for r, t in zip(rr, ts):
                if not t["done"]:
                    problems.append(f"{r['tag']} step {step} ({label}): not answered within XDS_APPLY_TIMEOUT "
                                    f"({t.get('why')}).")
                for nk in t.get("nacks") or []:
                    problems.append(f"{r['tag']} step {step}: NACK `{nk[:240]}`")
                if t["traffic"] is None and t["done"]:
                    problems.append(f"{r['tag']} step {step}: the real listener never showed the new configuration "
                                    f"(probe: {' | '.join(r['probe'][-4:])}).")
    o.append("")

# ---- memory
o.append("### Memory (skiff's VmRSS from /proc, fresh process per run)\n")
o.append("Before: the base configuration, LIVE. After: step 1 answered, +0.5 s. Heap: `allocated` from admin "
         "`/memory` (bytes in use by malloc; RSS also holds freed memory malloc keeps). After step 2: the listeners too.\n")
o.append("| run | mode | RSS before KiB | RSS after step 1 KiB | Δ RSS per cluster B | Δ heap per cluster B | RSS after step 2 KiB |")
o.append("| --- | --- | --- | --- | --- | --- | --- |")
mem = {}
for r in sorted(runs, key=lambda r: (r["eps"], r["n"], r["mode"], r["rep"])):
    if r["rss1"] is None or r["rss0"] is None or not r["step1"].get("done"):
        continue
    d = (r["rss1"] - r["rss0"]) * 1024 / r["n"]
    h = (r["heap1"] - r["heap0"]) / r["n"] if r["heap1"] is not None and r["heap0"] is not None else None
    mem.setdefault((r["n"], r["eps"], r["mode"]), []).append((d, h, r))
    o.append(f"| {r['n']} × {r['eps']} #{r['rep']} | {MODE[r['mode']]} | {r['rss0']:.0f} | {r['rss1']:.0f} | {d:.0f} | "
             f"{'–' if h is None else '%.0f' % h} | {'–' if r['rss2'] is None else '%.0f' % r['rss2']} |")
o.append("")
per_c = per_e = per_c_heap = per_e_heap = None
a, b = mem.get((nmax, eps, cmode)), mem.get((nmax, 1, cmode))
if a and b and eps > 1:
    d10, d1 = med([x[0] for x in a]), med([x[0] for x in b])
    per_e = (d10 - d1) / (eps - 1)
    per_c = d1 - per_e
    h10, h1 = med([x[1] for x in a]), med([x[1] for x in b])
    if h10 is not None and h1 is not None:
        per_e_heap = (h10 - h1) / (eps - 1)
        per_c_heap = h1 - per_e_heap
    o.append(f"Per cluster and per endpoint, from {nmax} clusters with {eps} and with 1 endpoint ({MODE[cmode]}; "
             f"Δ RSS per cluster = c + e × endpoints): **{per_c:.0f} B per cluster** (without its endpoints), "
             f"**{per_e:.0f} B per endpoint**; from the heap in use: {per_c_heap:.0f} B per cluster, "
             f"{per_e_heap:.0f} B per endpoint.\n" if per_c_heap is not None else
             f"Per cluster and per endpoint ({MODE[cmode]}): **{per_c:.0f} B per cluster**, **{per_e:.0f} B per endpoint**.\n")

# ---- churn
def lat(phase):
    p = os.path.join(cdir, phase + ".samples")
    if not os.path.exists(p):
        return None
    v = sorted(float(x) for x in open(p) if x.strip())
    if not v:
        return None
    line = open(os.path.join(cdir, phase + ".line")).read()
    kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
    return dict(p50=v[len(v) // 2], p99=v[int(len(v) * 0.99)], max=v[-1], n=len(v),
                errors=int(kv.get("errors", 0)) + int(kv.get("unfinished", 0)), late=int(kv.get("late", 0)))

def pushes(phase):
    p = os.path.join(cdir, phase + ".json")
    if not os.path.exists(p):
        return None
    return json.load(open(p))

churn_p99 = quiet_p99 = control_p99 = None
noisy = []
if os.path.exists(os.path.join(cdir, "quiet.samples")):
    o.append(f"### Churn: {rate} req/s through the real listener while {nmax} clusters are re-pushed\n")
    o.append(f"{MODE[cmode]}; skiff holds {nmax} clusters × {eps} endpoints and the {nlis} listeners (repetition 1 "
             f"of that size). Load: bench/tools/l7load `--rate {rate}`, {conns} HTTP/1.1 keep-alive connections to "
             f"the real listener (→ nginx), {csecs} s per phase, latency from each request's due time (open loop). "
             "**quiet**: no pushes; **control**: once a second the server re-reads its unchanged files and sends "
             "nothing (the server's CPU and memory traffic of the churn, without a push); **churn**: once a second "
             "the cluster file alternates between two variants (every cluster's connect_timeout and every "
             "endpoint's weight change) and the server pushes CDS and EDS with all clusters (a reload that takes "
             "longer than a second delays the next signal); **quiet (after)**: no pushes, once skiff has answered "
             "the last push (or XDS_APPLY_TIMEOUT passed). The verdict compares churn with both quiet phases' "
             "samples pooled.\n")
    o.append("| phase | p50 µs | p99 µs | max µs | requests | errors | late (load tool) | server reloads | CDS / EDS responses sent | answered by skiff in the phase |")
    o.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for ph, name in (("quiet", "quiet"), ("control", "control"), ("churn", "churn"), ("quiet2", "quiet (after)")):
        l, p = lat(ph), pushes(ph)
        if l is None:
            continue
        rs = p["responses"] if p else []
        sc = [r for r in rs if r["type"] == "cds"]
        se = [r for r in rs if r["type"] == "eds"]
        o.append(f"| {name} | {l['p50']:.0f} | {l['p99']:.0f} | {l['max']:.0f} | {l['n']} | {l['errors']} | {l['late']} | "
                 f"{len(p['stores']) if p else '–'} | {len(sc)} / {len(se)} | "
                 f"{sum(1 for r in rs if r['t_ans'])} of {len(rs)} |")
        if ph == "churn":
            churn_p99 = l["p99"]
        if ph == "control":
            control_p99 = l["p99"]
    qs = []
    for ph in ("quiet", "quiet2"):
        f = os.path.join(cdir, ph + ".samples")
        if os.path.exists(f):
            qs += [float(x) for x in open(f) if x.strip()]
    if qs:
        qs.sort()
        quiet_p99 = qs[int(len(qs) * 0.99)]
    o.append("")
    after = pushes("after")
    ca = None
    try:
        ca = json.load(open(os.path.join(cdir, "caughtup.json")))
    except (OSError, ValueError):
        pass
    w = open(os.path.join(cdir, "after.window")).read().split() if os.path.exists(os.path.join(cdir, "after.window")) else None
    rss = open(os.path.join(cdir, "rss")).read().strip() if os.path.exists(os.path.join(cdir, "rss")) else "?"
    allr = (pushes("churn") or {}).get("responses", []) + (after or {}).get("responses", [])
    lats = [ms(r["t_ans"] - r["t_send"]) for r in allr if r["t_ans"]]
    txt = ("After the churn phase skiff " + (f"answered the last push {float(w[1]) - float(w[0]):.1f} s after the phase ended"
                                            if ca and ca.get("done") else
                                            f"had not answered the last push {'%.0f' % (float(w[1]) - float(w[0])) if w else '?'} s after the phase ended")
           + f"; responses of the churn answered: {len(lats)} of {len(allr)}"
           + (f", response sent → ACK median {statistics.median(lats):.0f} ms, max {max(lats):.0f} ms" if lats else "")
           + f". Pooled quiet p99: {'–' if quiet_p99 is None else '%.0f' % quiet_p99} µs; churn ÷ control p99: "
           + (f"{churn_p99 / control_p99:.2f}×" if churn_p99 and control_p99 else "–")
           + f". skiff's RSS after the churn: {rss} KiB. skiff's exit: "
           + (open(os.path.join(cdir, "exit")).read().strip() if os.path.exists(os.path.join(cdir, "exit")) else "?") + ".\n")
    o.append(txt)
    cp = pushes("churn")
    n_push = len([r for r in (cp or {}).get("responses", []) if r["type"] == "cds"])
    if n_push < int(float(csecs)):
        o.append(f"The churn phase got {n_push} push{'' if n_push == 1 else 'es'} in {csecs} s, not one a second: "
                 f"the server re-reads the {fsize.get('c%d' % nmax, 0) / 1e6:.0f} MB cluster file on each signal "
                 "(seconds per reload on this machine, longer while it also sends) and is not signalled again before "
                 "it has finished.\n")
    for ph, name in (("quiet", "quiet"), ("control", "control"), ("churn", "churn"), ("quiet2", "quiet (after)")):
        l = lat(ph)
        if l and l["n"] and l["late"] / l["n"] >= 0.005:
            noisy.append(f"{name} {100 * l['late'] / l['n']:.1f}%")
    if noisy:
        o.append("Caution: the load tool itself (SCHED_FIFO) sent requests more than 1 ms late in " + ", ".join(noisy) +
                 " of them. A p99 sits at that level of stall: these p99s measure this VM's stalls (other sessions' "
                 "work, the server's reloads) as much as skiff, and the churn verdict below is not robust.\n")

# ---- targets
o.append("### skiff against the xDS targets\n")
o.append("| target | measured | verdict |")
o.append("| --- | --- | --- |")
def verdict(ok):
    return "**met**" if ok else "**not met**"
for m in modes:
    rr = [r for r in runs if r["n"] == nmax and r["eps"] == eps and r["mode"] == m]
    ts = [step_times(r["step1"], "cds", "eds", r["switch1"]) for r in rr]
    c = med([t["a"] for t in ts])
    tot = med([t["total"] for t in ts]) if all(t["total"] is not None for t in ts) else None
    o.append(f"| {nmax} clusters applied (response → ACK) ≤ 200 ms, {MODE[m]} | CDS {'–' if c is None else '%.0f' % c} ms; "
             f"whole CDS+EDS push {'not answered' if tot is None else '%.0f ms' % tot} | "
             f"{verdict(c is not None and tot is not None and c <= 200 and tot <= 200)} |")
if per_c is not None:
    o.append(f"| ≤ 4 KB per cluster | {per_c:.0f} B (RSS; heap {per_c_heap:.0f} B) | {verdict(per_c <= 4000)} |"
             if per_c_heap is not None else f"| ≤ 4 KB per cluster | {per_c:.0f} B | {verdict(per_c <= 4000)} |")
    o.append(f"| ≤ 300 B per endpoint | {per_e:.0f} B (RSS; heap {per_e_heap:.0f} B) | {verdict(per_e <= 300)} |"
             if per_e_heap is not None else f"| ≤ 300 B per endpoint | {per_e:.0f} B | {verdict(per_e <= 300)} |")
else:
    o.append("| ≤ 4 KB per cluster, ≤ 300 B per endpoint | not measured (a memory run did not complete) | **not met** |")
if churn_p99 is not None and quiet_p99:
    o.append(f"| p99 during churn ≤ 2× quiet | {churn_p99:.0f} vs {quiet_p99:.0f} µs (quiet before and after, pooled): "
             f"{churn_p99 / quiet_p99:.2f}× | "
             f"{verdict(churn_p99 <= 2 * quiet_p99)}{' (not robust: see the caution above)' if noisy else ''} |")
else:
    o.append("| p99 during churn ≤ 2× quiet | not measured | **not met** |")
o.append("")

# ---- what went wrong
for r in runs:
    if r["exit"] not in ("0", "running", ""):
        problems.append(f"{r['tag']}: skiff exited with status {r['exit']} (0 expected after SIGTERM).")
    errs = [l for l in r["probe"] if " error-" in l or " status-" in l]
    if errs:
        problems.append(f"{r['tag']}: requests through the real listener failed during the pushes: "
                        + " | ".join(errs[:3]))
ex = open(os.path.join(cdir, "exit")).read().strip() if os.path.exists(os.path.join(cdir, "exit")) else None
if ex not in (None, "0"):
    problems.append(f"churn: skiff exited with status {ex} after SIGTERM (0 expected; killed = still running 10 s after SIGTERM).")
for l in open(nacks).read().splitlines():
    problems.append(f"server log: `{l[:300]}`")
sl = [l.strip() for l in open(skiff_lines).read().splitlines() if l.strip()]
if sl:
    problems.append("skiff's log (-l warning), most frequent lines: " + " | ".join(f"`{l[:200]}`" for l in sl[:5]))
o.append(f"Load average (1 min) at the start and end: {load0} / {load1}; CPU stolen by the hypervisor: {steal} s. "
         "Other sessions share this 2-vCPU VM: compare within one run.\n")
if problems:
    o.append("Problems seen in this run:\n")
    seen = set()
    for p in problems:
        if p not in seen:
            o.append(f"- {p}")
            seen.add(p)
    o.append("")
open(out, "w").write("\n".join(o))
PY

if [ -n "$out" ]; then
	cp "$section" "$out"
else
	cat "$section"
	"$PY" - "$here/RESULTS.md" "$section" <<'PY'
import os, sys
path, sec = sys.argv[1:]
new = open(sec).read().rstrip("\n") + "\n"
old = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
lines = old.splitlines(keepends=True)
start = next((i for i, l in enumerate(lines) if l.startswith("## xDS")), None)
if start is None:
    text = old.rstrip("\n") + "\n\n" + new
else:
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    rest = "".join(lines[end:])
    text = "".join(lines[:start]) + new + ("\n" + rest if rest else "")
open(path, "w").write(text)
PY
	echo "xds.sh: the xDS section of $here/RESULTS.md is updated" >&2
fi
