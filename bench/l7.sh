#!/usr/bin/env bash
# L7 side by side, in one run, on loopback: HTTP/1.1 keep-alive, 1 KiB responses, through
#   direct   the client straight to the backend
#   skiff    http_connection_manager (codec AUTO) -> router -> a static cluster
#   haproxy  mode http, http-reuse always, nbthread 1
#   nginx    proxy_pass to an upstream with keepalive 64, proxy_http_version 1.1,
#            Connection "", worker_processes 1
# The backend is a second nginx (1 worker) serving a static 1024-byte file. Every proxy runs
# with one worker/thread pinned to CPU 1; the load tool (bench/tools/l7load.c) and the
# backend share CPU 0. Whichever CPU saturates first caps requests/s, so requests/s alone
# says little: the proxy's CPU time per request is the figure to compare (utime+stime, fields 14+15 of
# /proc/PID/stat, summed over the process and its children, before and after each run,
# divided by the responses served). For each scenario (number of connections):
#   throughput   closed loop, L7_ROUNDS rounds of L7_DURATION s per setup, setups interleaved
#                (order rotated each round): req/s (median), CPU per request (all rounds)
#   latency      open loop at a fixed L7_RATE req/s, L7_ROUNDS rounds of L7_RATE_DURATION s
#                per setup, interleaved the same way (latency counted from each request's due
#                time): p50/p99 of the pooled samples, and CPU per request at that rate
# HTTP/2 (h2c with prior knowledge from the client; HTTP/1.1 to the backend for every proxy)
# runs the same way for the scenarios in L7_H2 ("CONNSxSTREAMS"), with direct = the backend's
# own h2c listener. A setup that does not answer h2c correctly is skipped with a note.
#
# Usage: bench/l7.sh BUILD_DIR [OUT.md]
#   with OUT.md (bench/run.sh): the L7 section is written there;
#   without: it is printed and replaces the "## L7" section of bench/RESULTS.md.
# Environment: L7_CONNS (default "16 100"), L7_DURATION (2), L7_ROUNDS (3), L7_RATE (1000),
#   L7_RATE_DURATION (2), L7_H2 ("4x25"; empty: no HTTP/2), L7_RT (1: the latency runs use
#   SCHED_FIFO, see set_rt; 0: never). The defaults take about 3 minutes.
set -euo pipefail
build=${1:?usage: bench/l7.sh BUILD_DIR [OUT.md]}
build=$(cd "$build" && pwd)
out=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
skiff=$build/proxy/skiff
load=$build/bench/l7load
CONNS=${L7_CONNS:-16 100}
DURATION=${L7_DURATION:-2}
ROUNDS=${L7_ROUNDS:-3}
RATE=${L7_RATE:-1000}
RATE_DURATION=${L7_RATE_DURATION:-2}
H2=${L7_H2-4x25}

[ -x "$skiff" ] || { echo "l7.sh: $skiff missing (./run build)" >&2; exit 1; }
[ -x "$load" ] || { echo "l7.sh: $load missing (configure with -Dbench=true: ./run bench)" >&2; exit 1; }
for t in nginx haproxy curl python3 taskset; do
	command -v "$t" >/dev/null || { echo "l7.sh: needs $t" >&2; exit 1; }
done

work=$(mktemp -d)
chmod 755 "$work" # nginx's workers run as nobody and read the document root in here
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
	pinning="proxies pinned to CPU 1; load tool and backend share CPU 0 (taskset)"
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
	echo "l7.sh: nothing listens on port $1" >&2
	return 1
}
tree() { echo "$1" $(pgrep -P "$1"); } # a process and its children
# PIDS... -> "TICKS NS": utime+stime in clock ticks (/proc/PID/stat fields 14+15: all the
# threads of a process) and the scheduler's run time in ns (/proc/PID/task/*/schedstat).
cpu_now() {
	local f=() p
	for p in "$@"; do f+=("/proc/$p/stat" /proc/"$p"/task/*/schedstat); done
	# stat: fields after "pid (comm) " (comm may hold spaces): state is $1, utime $12, stime $13
	awk '/\) / { sub(/^.*\) /, ""); split($0, a, " "); t += a[12] + a[13]; next }
	     { ns += $1 } END { printf "%d %.0f\n", t, ns }' "${f[@]}"
}
# L7_RT=1 (default): the open-loop (latency) runs give the load tool, the backend and the
# proxies SCHED_FIFO, so that other work on this small machine (another build, a test run)
# does not preempt them; at L7_RATE req/s each uses a small part of a CPU. The closed-loop
# runs stay SCHED_OTHER (they saturate CPUs: FIFO would starve everything else).
RT=${L7_RT:-1}
if [ "$RT" = 1 ] && ! chrt -f 10 true 2>/dev/null; then
	RT=0
	rt_note="SCHED_FIFO is not allowed here: the latency runs used the normal scheduler."
fi
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
steal() { awk '/^cpu / {print $9}' /proc/stat; } # ticks the hypervisor gave to others
steal0=$(steal)

# ---------------------------------------------------------------- backend
mkdir -p "$work/www" "$work/backend"
chmod 755 "$work/www"
python3 -c 'import sys; sys.stdout.write(("0123456789abcdef" * 64)[:1023] + "\n")' >"$work/www/1k"
chmod 644 "$work/www/1k"
bport=$(free_port)
bport_h2=$(free_port)
ngx_common() { # DIR: the lines every nginx here shares
	cat <<NGX
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 8192; }
NGX
}
ngx_http_common() { # DIR
	cat <<NGX
  access_log off;
  client_body_temp_path $1; proxy_temp_path $1; fastcgi_temp_path $1;
  uwsgi_temp_path $1; scgi_temp_path $1;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
NGX
}
{
	ngx_common "$work/backend"
	echo "http {"
	ngx_http_common "$work/backend"
	cat <<NGX
  open_file_cache max=16;
  server {
    listen 127.0.0.1:$bport;
    listen 127.0.0.1:$bport_h2 http2;
    root $work/www;
    location = /status { stub_status; }
  }
}
NGX
} >"$work/backend/nginx.conf"
"${pin_load[@]}" nginx -p "$work/backend" -e "$work/backend/error.log" -c "$work/backend/nginx.conf" &
pids+=($!)

declare -A port port_h2 pid label
setups=(direct skiff haproxy nginx)
label[direct]="direct (client -> backend)"
label[skiff]="skiff"
label[haproxy]="HAProxy"
label[nginx]="nginx"
port[direct]=$bport
port_h2[direct]=$bport_h2

# ---------------------------------------------------------------- skiff
port[skiff]=$(free_port)
port_h2[skiff]=${port[skiff]} # codec AUTO: HTTP/1.1 and h2c on one listener
skiff_admin=$(free_port)
cat >"$work/skiff.json" <<EOF
{
  "node": {"id": "bench", "cluster": "bench"},
  "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $skiff_admin}}},
  "static_resources": {
    "clusters": [
      {"name": "backend", "type": "STATIC", "connect_timeout": "5s",
       "load_assignment": {"cluster_name": "backend", "endpoints": [{"lb_endpoints": [
         {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $bport}}}}]}]}}
    ],
    "listeners": [
      {"name": "l7", "address": {"socket_address": {"address": "127.0.0.1", "port_value": ${port[skiff]}}},
       "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
         "typed_config": {
           "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
           "stat_prefix": "l7", "codec_type": "AUTO",
           "route_config": {"name": "local", "virtual_hosts": [{"name": "all", "domains": ["*"],
             "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend", "timeout": "0s"}}]}]},
           "http_filters": [{"name": "envoy.filters.http.router",
             "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}
    ]
  }
}
EOF
"${pin_proxy[@]}" "$skiff" -c "$work/skiff.json" --concurrency 1 -l warning --disable-hot-restart \
	>"$work/skiff.log" 2>&1 &
pid[skiff]=$!
pids+=($!)

# ---------------------------------------------------------------- HAProxy
port[haproxy]=$(free_port)
port_h2[haproxy]=$(free_port)
cat >"$work/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
frontend f
  bind 127.0.0.1:${port[haproxy]}
  bind 127.0.0.1:${port_h2[haproxy]} proto h2
  default_backend b
backend b
  server s 127.0.0.1:$bport
HAP
"${pin_proxy[@]}" haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pid[haproxy]=$!
pids+=($!)

# ---------------------------------------------------------------- nginx
port[nginx]=$(free_port)
port_h2[nginx]=$(free_port)
mkdir -p "$work/nginx"
{
	ngx_common "$work/nginx"
	echo "http {"
	ngx_http_common "$work/nginx"
	cat <<NGX
  upstream backend {
    server 127.0.0.1:$bport;
    keepalive 64;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${port[nginx]};
    listen 127.0.0.1:${port_h2[nginx]} http2;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGX
} >"$work/nginx/nginx.conf"
"${pin_proxy[@]}" nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
pid[nginx]=$!
pids+=($!)

declare -A procs
for s in "${setups[@]}"; do
	wait_port "${port[$s]}" || {
		cat "$work/skiff.log" "$work/haproxy.log" "$work/backend/error.log" "$work/nginx/error.log" >&2 2>/dev/null
		exit 1
	}
done
wait_port "$skiff_admin"
for m in "${pids[0]}" "${pid[nginx]}"; do # nginx forks its worker after it listens
	for _ in $(seq 1 100); do [ -n "$(pgrep -P "$m")" ] && break; sleep 0.05; done
done
for s in skiff haproxy nginx; do procs[$s]=$(tree "${pid[$s]}"); done
backend_procs=$(tree "${pids[0]}")
all_procs="$backend_procs ${procs[skiff]} ${procs[haproxy]} ${procs[nginx]}"

# ---------------------------------------------------------------- checks
skiff_rq() { curl -s "http://127.0.0.1:$skiff_admin/stats" | sed -n 's/^http\.l7\.downstream_rq_total: //p'; }
backend_accepts() { curl -s "http://127.0.0.1:$bport/status" | awk 'NR == 3 {print $1}'; }
notes=()
[ -n "${rt_note:-}" ] && notes+=("$rt_note")
for s in "${setups[@]}"; do
	if ! curl -sf -o "$work/got" "http://127.0.0.1:${port[$s]}/1k" || ! cmp -s "$work/got" "$work/www/1k"; then
		echo "l7.sh: $s does not return the 1 KiB body over HTTP/1.1" >&2
		[ "$s" = skiff ] && cat "$work/skiff.log" >&2
		exit 1
	fi
done
skiff_rq0=$(skiff_rq)
[ -n "$skiff_rq0" ] || { echo "l7.sh: skiff's admin /stats has no http.l7.downstream_rq_total" >&2; exit 1; }

h2_setups=()
if [ -n "$H2" ]; then
	for s in "${setups[@]}"; do
		got=$(curl -sS --http2-prior-knowledge --max-time 5 -o "$work/got" -w '%{http_version} %{http_code}' \
			"http://127.0.0.1:${port_h2[$s]}/1k" 2>"$work/curl.err") || true
		if [ "$got" = "2 200" ] && cmp -s "$work/got" "$work/www/1k"; then
			h2_setups+=("$s")
		else
			err=$(tr '\n' ' ' <"$work/curl.err" | cut -c1-120)
			[ -n "$err" ] || err="HTTP version ${got% *}, status ${got#* }"
			notes+=("HTTP/2 skipped for ${label[$s]}: h2c with prior knowledge (\`curl --http2-prior-knowledge\`) answered \`${err% }\`; the h2 rows fill in once it answers.")
			echo "l7.sh: h2c to $s failed ($err): skipped" >&2
		fi
	done
fi

# ---------------------------------------------------------------- runs
# run_one SCEN PROTO SETUP KIND(closed|rate) CONNS STREAMS: one l7load run, its line appended
# to runs.tsv with the proxy's CPU and the backend's new connections during the run.
echo -e "scen\tproto\tsetup\tkind\tticks\tns\taccepts\tother_ticks\twall_ms\tline" >"$work/runs.tsv"
hz=$(getconf CLK_TCK)
busy() { awk '/^cpu / {print $2 + $3 + $4}' /proc/stat; } # user+nice+system ticks, all CPUs
run_one() {
	local scen=$1 proto=$2 s=$3 kind=$4 conns=$5 streams=$6 p args c0="0 0" c1="0 0" a0 a1 line rt=()
	if [ "$proto" = h2 ]; then p=${port_h2[$s]} args=(--h2 --streams "$streams"); else p=${port[$s]} args=(); fi
	if [ "$kind" = rate ]; then
		args+=(--rate "$RATE" --samples "$work/$scen.$s.samples" "127.0.0.1:$p/1k" "$conns" "$RATE_DURATION")
		[ "$RT" = 1 ] && rt=(chrt -f 10)
	else
		args+=("127.0.0.1:$p/1k" "$conns" "$DURATION")
	fi
	a0=$(backend_accepts)
	[ -n "${pid[$s]:-}" ] && c0=$(cpu_now ${procs[$s]})
	b0=$(cpu_now $backend_procs) m0=$(busy) w0=$(date +%s%N)
	line=$("${rt[@]}" "${pin_load[@]}" "$load" "${args[@]}") ||
		echo "l7.sh: $scen $s $kind: l7load reported errors: $line" >&2
	w1=$(date +%s%N) m1=$(busy) b1=$(cpu_now $backend_procs)
	[ -n "${pid[$s]:-}" ] && c1=$(cpu_now ${procs[$s]})
	a1=$(backend_accepts)
	read -r t0 n0 <<<"$c0"
	read -r t1 n1 <<<"$c1"
	# other processes' CPU in the meantime: the machine's user+system ticks less those of the
	# proxy, the backend and the load tool (l7load's cpu_ms)
	other=$(((m1 - m0) - (t1 - t0) - (${b1% *} - ${b0% *}) - $(kv cpu_ms "$line") * hz / 1000))
	# (the second status request is one accept itself)
	echo -e "$scen\t$proto\t$s\t$kind\t$((t1 - t0))\t$((n1 - n0))\t$((a1 - a0 - 1))\t$other\t$(((w1 - w0) / 1000000))\t$line" >>"$work/runs.tsv"
	echo "$scen $s $kind: $line" >&2
}
warm() { # PROTO SETUP CONNS STREAMS: open the proxy's upstream connections, untimed
	local args=() line
	[ "$1" = h2 ] && args=(--h2 --streams "$4")
	line=$("${pin_load[@]}" "$load" "${args[@]}" \
		"127.0.0.1:$([ "$1" = h2 ] && echo "${port_h2[$2]}" || echo "${port[$2]}")/1k" "$3" 0.5) || true
	[ "$2" = skiff ] && warm_skiff=$((warm_skiff + $(kv total "$line")))
	return 0
}
warm_skiff=0
scenario() { # SCEN PROTO CONNS STREAMS SETUPS...
	local scen=$1 proto=$2 conns=$3 streams=$4 r i n s
	shift 4
	local list=("$@")
	n=${#list[@]}
	echo "l7: $(date +%T) $scen" >&2
	for s in "${list[@]}"; do warm "$proto" "$s" "$conns" "$streams"; done
	for r in $(seq 1 "$ROUNDS"); do
		for i in $(seq 0 $((n - 1))); do
			run_one "$scen" "$proto" "${list[$(((i + r - 1) % n))]}" closed "$conns" "$streams"
		done
		set_rt 1
		for i in $(seq 0 $((n - 1))); do
			run_one "$scen" "$proto" "${list[$(((i + r) % n))]}" rate "$conns" "$streams"
		done
		set_rt 0
	done
}

scens=()
for c in $CONNS; do
	scenario "h1_$c" h1 "$c" 1 "${setups[@]}"
	scens+=("h1_$c")
done
if [ ${#h2_setups[@]} -gt 0 ]; then
	for sc in $H2; do
		scenario "h2_$sc" h2 "${sc%x*}" "${sc#*x}" "${h2_setups[@]}"
		scens+=("h2_$sc")
	done
fi
skiff_rq1=$(skiff_rq)
for s in skiff haproxy nginx; do
	for p in ${procs[$s]}; do
		kill -0 "$p" 2>/dev/null || { echo "l7.sh: $s (process $p) died during the run" >&2; exit 1; }
	done
done

# ---------------------------------------------------------------- report
echo "l7: $(date +%T) done" >&2
rev="commit $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$here/.." status --porcelain -- . ':!bench' ':!run' 2>/dev/null)" ]; then
	rev+=" with uncommitted changes outside bench/"
fi
envs=$( (env | grep -E '^L7_' || true) | sort | tr '\n' ' ')
labels=$(for s in "${setups[@]}"; do printf '%s\t%s\n' "$s" "${label[$s]}"; done)
notes_txt=$(printf '%s\n' "${notes[@]+"${notes[@]}"}")
section=$work/l7.md
python3 - "$work" "$section" "$(getconf CLK_TCK)" "$labels" "${scens[*]}" "$pinning" \
	"$DURATION" "$ROUNDS" "$RATE" "$RATE_DURATION" "$envs" "$(date -u +%Y-%m-%d)" "$rev" "$load0" \
	"$(cut -d' ' -f1 /proc/loadavg)" "$skiff_rq0" "$skiff_rq1" "$notes_txt" "$warm_skiff" "$(($(steal) - steal0))" "$RT" \
	"$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r)" <<'PY'
import re, statistics, sys
(work, out, hz, labels, scens, pinning, dur, rounds, rate, rate_dur, envs, date, rev, load0, load1,
 rq0, rq1, notes, warm_skiff, steal, rt, machine) = sys.argv[1:]
hz = int(hz)
ncpu = machine.split()[0]
tsv = f"{work}/runs.tsv"
label = dict(l.split("\t", 1) for l in labels.splitlines())
order = list(label)

def kv(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}

runs = []
with open(tsv) as f:
    next(f)
    for l in f:
        scen, proto, s, kind, ticks, ns, acc, other, wall, line = l.rstrip("\n").split("\t", 9)
        d = kv(line)
        runs.append(dict(scen=scen, s=s, kind=kind, ticks=int(ticks), ns=int(ns), acc=int(acc),
                         other=int(other), wall=int(wall),
                         total=int(d.get("total", 0)), rps=float(d.get("rps", 0)),
                         p50=float(d.get("p50_us", 0)), p99=float(d.get("p99_us", 0)),
                         errors=int(d.get("errors", 0)) + int(d.get("unfinished", 0)),
                         late=int(d.get("late", 0))))

def agg(scen, s):
    c = [r for r in runs if r["scen"] == scen and r["s"] == s and r["kind"] == "closed"]
    q = [r for r in runs if r["scen"] == scen and r["s"] == s and r["kind"] == "rate"]
    if not c:
        return None
    tot = sum(r["total"] for r in c)
    qtot = sum(r["total"] for r in q)
    a = dict(rps=statistics.median(r["rps"] for r in c), lo=min(r["rps"] for r in c), hi=max(r["rps"] for r in c),
             cpu=sum(r["ticks"] for r in c) / hz * 1e6 / tot if tot else None,
             cpu_ns=sum(r["ns"] for r in c) / 1e3 / tot if tot else None,
             cpu_rate=sum(r["ns"] for r in q) / 1e3 / qtot if qtot else None,
             acc=sum(r["acc"] for r in c + q), errors=sum(r["errors"] for r in c + q),
             late=sum(r["late"] for r in q), n=0,
             other=sum(r["other"] for r in c + q) / hz, wall=sum(r["wall"] for r in c + q) / 1000)
    try:
        with open(f"{work}/{scen}.{s}.samples") as fh:
            v = sorted(float(x) for x in fh)
        a.update(p50=v[len(v) // 2], p99=v[int(len(v) * 0.99)], n=len(v),
                 p99lo=min(r["p99"] for r in q), p99hi=max(r["p99"] for r in q))
    except (OSError, IndexError):
        pass
    return a

def f(x, fmt="%.1f"):
    return "–" if x is None else fmt % x

o = ["## L7 (HTTP/1.1)\n"]
o.append(f"Command: `{envs}bench/l7.sh build` (also run by `./run bench`), {date}, skiff at {rev}, "
         f"{machine}, release build. Load tool: bench/tools/l7load.c (epoll, one thread).\n")
o.append(f"HTTP/1.1 keep-alive, GET of a 1024-byte static file from a backend nginx (1 worker). Proxies: "
         "skiff (`--concurrency 1`, http_connection_manager codec AUTO, router, static cluster, no access log), "
         "HAProxy 1 thread (`mode http`, `http-reuse always`), nginx 1 worker (`proxy_pass` to an upstream with "
         f"`keepalive 64`, `proxy_http_version 1.1`, `Connection \"\"`); {pinning}. All setups run side by side "
         f"in {rounds} rounds, the order rotated each round. **req/s**: closed loop (each connection one request "
         f"in flight), {dur} s per round; median (min–max) of the rounds. **Proxy CPU µs/req**: utime+stime "
         f"(fields 14+15 of /proc/PID/stat, {1000 // hz} ms ticks, process + children) over the closed-loop "
         "rounds ÷ responses served. **÷ best**: that over the lower of HAProxy's and nginx's. "
         f"**p50/p99 @{rate}/s**: open loop at a fixed {rate} req/s, {rate_dur} s per round, spread over the same "
         "connections round robin, latency counted from each request's due time, percentiles of all rounds' "
         "samples pooled (in brackets: the lowest and highest p99 of a single round: one stall in one round "
         "can make the pooled p99)" + ("; during these runs the load tool, the backend and the proxies run SCHED_FIFO "
         "(chrt), so that other work on the machine does not preempt them" if rt == "1" else "") +
         f"; the CPU per request at that rate is the scheduler's run time "
         "(/proc/PID/task/*/schedstat, ns; 10 ms ticks are too coarse for so few requests). **Backend conns**: "
         "connections the backend accepted during the measured runs (a proxy that keeps its upstream "
         "connections opens none; direct: the load tool's own).\n")
verdicts, churn = [], []
for scen in scens.split():
    proto, sc = scen.split("_", 1)
    if proto == "h1":
        title = f"### HTTP/1.1, {sc} connections"
        inflight = int(sc)
    else:
        c, st = sc.split("x")
        title = f"### HTTP/2 (h2c prior knowledge to the proxy, HTTP/1.1 to the backend), {c} connections × {st} streams"
        inflight = int(c) * int(st)
    o.append(title + "\n")
    o.append(f"| setup | req/s | proxy CPU µs/req | ÷ best of HAProxy/nginx | p50 µs @{rate}/s | p99 µs @{rate}/s "
             f"| proxy CPU µs/req @{rate}/s | backend conns | errors |")
    o.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    A = {s: agg(scen, s) for s in order}
    others = [A[s]["cpu"] for s in ("haproxy", "nginx") if A.get(s) and A[s]["cpu"]]
    best = min(others) if others else None
    for s in order:
        a = A[s]
        if a is None:
            o.append(f"| {label[s]} | skipped (see below) | | | | | | | |")
            continue
        direct = s == "direct"
        ratio = None if direct or best is None or a["cpu"] is None else a["cpu"] / best
        o.append(f"| {label[s]} | {a['rps']:.0f} ({a['lo']:.0f}–{a['hi']:.0f}) | {'–' if direct else f(a['cpu'])} | "
                 f"{f(ratio, '%.2f')} | {f(a.get('p50'), '%.0f')} | {f(a.get('p99'), '%.0f')}"
                 + (f" ({a['p99lo']:.0f}–{a['p99hi']:.0f})" if 'p99lo' in a else "") + " | "
                 f"{'–' if direct else f(a.get('cpu_rate'))} | {a['acc']} | {a['errors']} |")
        if not direct and a["acc"] > 5 * inflight:
            churn.append(f"{label[s]} opened {a['acc']} backend connections in “{title[4:]}”: {inflight} requests "
                         "in flight" + (" against its `keepalive 64` idle pool, so it closes and reopens upstream "
                         "connections (the configuration the issue specifies)" if s == "nginx" else "") + ".")
        print(f"l7: {scen} {s}: cpu/req ticks {f(a['cpu'])} us, schedstat {f(a['cpu_ns'])} us; "
              f"rate samples {a['n']}, late {a['late']}", file=sys.stderr)
    o.append("")
    o.append(f"Noise: requests the load tool itself sent more than 1 ms after they were due (its own CPU was "
             f"busy or stalled: they inflate p99 whatever the proxy does), of {rate}/s × {rate_dur} s × {rounds} "
             "rounds: " + ", ".join(f"{label[s]} {A[s]['late']}" for s in order if A[s]) +
             f". CPU used by other processes on the machine during each setup's runs (in CPU-seconds per second, "
             f"of {ncpu}): " + ", ".join(f"{label[s]} {max(A[s]['other'], 0) / A[s]['wall']:.2f}"
                                         for s in order if A[s] and A[s]['wall']) + ".\n")
    sk = A.get("skiff")
    if sk and best:
        p99s = [A[s]["p99"] for s in ("haproxy", "nginx") if A.get(s) and A[s].get("p99")]
        bp99 = min(p99s) if p99s else None
        verdicts.append((title[4:], sk["cpu"] / best, sk.get("p99"), bp99))
if verdicts:
    o.append("### skiff against the L7 targets\n")
    o.append(f"| scenario | CPU/request ≤ 0.8× the better of HAProxy/nginx | p99 @{rate}/s no worse than the better of theirs |")
    o.append("| --- | --- | --- |")
    for t, r, p, bp in verdicts:
        o.append(f"| {t} | {r:.2f}× — {'**met**' if r <= 0.8 else '**not met**'} | "
                 f"{f(p, '%.0f')} vs {f(bp, '%.0f')} µs — {'**met**' if p is not None and bp and p <= bp else '**not met**'} |")
    o.append("")
served = int(rq1) - int(rq0)
sent = sum(r["total"] for r in runs if r["s"] == "skiff")
o.append(f"skiff proxied for real: its admin /stats counted {served} requests (`http.l7.downstream_rq_total`) "
         f"during the runs, the load tool {sent + int(warm_skiff)} responses through it ({sent} measured, "
         f"{warm_skiff} in the untimed warm-ups). Load average (1 min) at the start and end of this L7 run: "
         f"{load0} / {load1}; CPU time stolen by the hypervisor during it: {int(steal) / hz:.1f} s. On this "
         "2-vCPU VM a stall of a few ms lands in some p99s at random (another session's build, the host): "
         "compare setups within one run, and treat a verdict near its threshold as noise.\n")
for n in churn + [n for n in notes.splitlines() if n.strip()]:
    o.append(f"- {n}")
if churn or notes.strip():
    o.append("")
with open(out, "w") as fh:
    fh.write("\n".join(o))
PY

if [ -n "$out" ]; then
	cp "$section" "$out"
else
	cat "$section"
	# standalone: replace the "## L7" section of RESULTS.md (up to the next "## "), or append it
	python3 - "$here/RESULTS.md" "$section" <<'PY'
import os, sys
path, sec = sys.argv[1:]
new = open(sec).read().rstrip("\n") + "\n"
old = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
lines = old.splitlines(keepends=True)
start = next((i for i, l in enumerate(lines) if l.startswith("## L7")), None)
if start is None:
    text = old.rstrip("\n") + "\n\n" + new
else:
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    rest = "".join(lines[end:])
    text = "".join(lines[:start]) + new + ("\n" + rest if rest else "")
open(path, "w").write(text)
PY
	echo "l7.sh: the L7 section of $here/RESULTS.md is updated" >&2
fi
