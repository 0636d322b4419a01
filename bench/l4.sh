#!/usr/bin/env bash
# L4 side by side, in one run, on loopback: direct, skiff tcp_proxy (read/write and
# SKIFF_RELAY=splice), HAProxy mode tcp (and with splice, for reference), nginx stream.
# Every proxy runs with one worker/thread pinned to one CPU; the load tool's client and
# server share the other CPU. Measures, in this order:
#   idle memory  RSS of the proxy (process + workers) with K idle connections through it,
#                minus RSS before, / K (K = L4_IDLE, lowered to what the fd limit allows)
#   bulk         L4_BULK_BYTES through one connection, L4_BULK_ROUNDS rounds, setups
#                interleaved (order rotated each round); median MB/s; proxy CPU per GiB
#   ping-pong    1-byte round trips, L4_RTT_N timed in all over 4 connections (interleaved,
#                1000 warm-up each); pooled p50/p99 us; proxy CPU per 1000 round trips
#                (warm-up included in the count)
# CPU = utime+stime from /proc/PID/stat (all threads; master + workers), before/after.
# Usage: bench/l4.sh BUILD_DIR OUT.md   (bench/run.sh calls it; OUT.md gets the L4 section)
set -euo pipefail
build=${1:?build dir}
out=${2:?output markdown}
skiff=$build/proxy/skiff
load=$build/bench/l4load
BULK_BYTES=${L4_BULK_BYTES:-536870912}
BULK_ROUNDS=${L4_BULK_ROUNDS:-5}
RTT_N=${L4_RTT_N:-20000}
IDLE_WANT=${L4_IDLE:-10000}

[ -x "$load" ] || { echo "l4.sh: $load missing (configure with -Dbench=true)" >&2; exit 1; }
ngx_stream=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f "$ngx_stream" ] || { echo "l4.sh: nginx stream module missing (apt-get install -y libnginx-mod-stream)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
	local p
	exec 8>&- 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# CPUs: proxies on one, client and server on the other (all on whatever there is if < 2).
if [ "$(nproc)" -ge 2 ]; then
	# arrays, not functions: "$!" must be the proxy itself (taskset execs it)
	pin_proxy=(taskset -c 1) pin_load=(taskset -c 0)
	pinning="proxies pinned to CPU 1, client and server to CPU 0 (taskset)"
else
	pin_proxy=() pin_load=()
	pinning="one CPU only: nothing pinned"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # PORT: until something accepts on it
	local i
	for i in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "l4.sh: nothing listens on port $1" >&2
	return 1
}
tree() { echo "$1" "$(pgrep -P "$1" | tr "\n" " ")"; } # a process and its children
# CPU time (clock ticks) of a process, its threads and its children.
cpu_ticks() {
	local t=0 p v
	for p in $(tree "$1"); do
		# fields after "pid (comm) ": state is $1, utime $12, stime $13
		v=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')
		t=$((t + v))
	done
	echo "$t"
}
rss_kb() {
	local t=0 p
	for p in $(tree "$1"); do t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done
	echo "$t"
}
kv() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; } # KEY LINE

# The fd limit decides how many idle connections a proxy can carry (2 fds each; skiff's
# splice relay holds 2 pipes more per connection: 6 fds). Raise the soft limit to the hard.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
idle_k() { # FDS_PER_CONN
	local k=$(((NOFILE - 200) / $1))
	[ "$k" -gt "$IDLE_WANT" ] && k=$IDLE_WANT
	echo "$k"
}

load0=$(cut -d' ' -f1 /proc/loadavg)
# ---------------------------------------------------------------- servers
srv_port=$(free_port)
"${pin_load[@]}" "$load" serve "$srv_port" &
pids+=($!)
wait_port "$srv_port"
# reference only: the same server on the proxies' CPU (direct, but across CPUs)
srv2_port=$(free_port)
"${pin_proxy[@]}" "$load" serve "$srv2_port" &
pids+=($!)
wait_port "$srv2_port"

# setups: name -> "port pid fds_per_conn"
declare -A port pid fds label
order=(direct direct_xcpu skiff_rw skiff_splice haproxy haproxy_splice nginx)
label[direct]="direct (client and server on one CPU)"
label[direct_xcpu]="direct, server on the proxy CPU (reference)"
label[skiff_rw]="skiff tcp_proxy, read/write (default)"
label[skiff_splice]="skiff tcp_proxy, SKIFF_RELAY=splice"
label[haproxy]="HAProxy mode tcp"
label[haproxy_splice]="HAProxy mode tcp + splice-request/response (reference)"
label[nginx]="nginx stream proxy_pass"
port[direct]=$srv_port
port[direct_xcpu]=$srv2_port

# ---------------------------------------------------------------- skiff
# (max_connections as Istio sets it: Envoy's default circuit breaker stops at 1024)
skiff_conf() { # ADMIN_PORT LISTEN_PORT [LISTENER_FILTERS_JSON]
	cat <<EOF
{
  "node": {"id": "bench", "cluster": "bench"},
  "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $1}}},
  "static_resources": {
    "clusters": [
      {"name": "backend", "type": "STATIC", "connect_timeout": "5s",
       "circuit_breakers": {"thresholds": [{"max_connections": 4294967295}]},
       "load_assignment": {"cluster_name": "backend", "endpoints": [{"lb_endpoints": [
         {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $srv_port}}}}]}]}}
    ],
    "listeners": [
      {"name": "l4", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $2}},${3:-}
       "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy",
         "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                          "stat_prefix": "l4", "cluster": "backend"}}]}]}
    ]
  }
}
EOF
}
# skiff_istio: idle memory only; the listener filters Istio puts on virtualInbound and
# virtualOutbound (each connection is inspected before tcp_proxy gets it).
istio_filters='
       "listener_filters": [
         {"name": "envoy.filters.listener.tls_inspector", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}},
         {"name": "envoy.filters.listener.http_inspector", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"}}],'
label[skiff_istio]="skiff read/write, with tls_inspector + http_inspector (Istio's listeners)"
for s in skiff_rw skiff_splice skiff_istio; do
	port[$s]=$(free_port)
	if [ "$s" = skiff_istio ]; then lf=$istio_filters; else lf=""; fi
	skiff_conf "$(free_port)" "${port[$s]}" "$lf" >"$work/$s.json"
	if [ "$s" = skiff_splice ]; then relay=splice; else relay=readwrite; fi
	SKIFF_RELAY=$relay "${pin_proxy[@]}" "$skiff" -c "$work/$s.json" --concurrency 1 -l warning \
		--disable-hot-restart >"$work/$s.log" 2>&1 &
	pid[$s]=$!
	pids+=($!)
done
fds[skiff_rw]=2
fds[skiff_splice]=6
fds[skiff_istio]=2

# ---------------------------------------------------------------- HAProxy
hap_maxconn=$(((NOFILE - 200) / 2))
for s in haproxy haproxy_splice; do
	port[$s]=$(free_port)
	if [ "$s" = haproxy_splice ]; then
		extra="  option splice-request
  option splice-response"
		gl="  maxconn 1000
  maxpipes 64"
	else
		extra=""
		gl="  maxconn $hap_maxconn"
	fi
	cat >"$work/$s.cfg" <<HAP
global
  nbthread 1
$gl
  tune.bufsize 65536
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
$extra
frontend f
  bind 127.0.0.1:${port[$s]}
  default_backend b
backend b
  server s 127.0.0.1:$srv_port
HAP
	"${pin_proxy[@]}" haproxy -f "$work/$s.cfg" -db >"$work/$s.log" 2>&1 &
	pid[$s]=$!
	pids+=($!)
done
fds[haproxy]=2

# ---------------------------------------------------------------- nginx
port[nginx]=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGX
load_module $ngx_stream;
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections $((NOFILE - 100)); }
stream {
  server {
    listen 127.0.0.1:${port[nginx]};
    proxy_pass 127.0.0.1:$srv_port;
    proxy_buffer_size 64k;
    proxy_timeout 1h;
    proxy_half_close on;
  }
}
NGX
"${pin_proxy[@]}" nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
pid[nginx]=$!
pids+=($!)
fds[nginx]=2

for s in "${order[@]}" skiff_istio; do wait_port "${port[$s]}"; done
# warm every path once (lazy initialisation is not per-connection memory)
for s in "${order[@]}"; do "${pin_load[@]}" "$load" rtt "127.0.0.1:${port[$s]}" 200 >/dev/null; done
# (an echo byte stream looks like the start of an HTTP method to http_inspector: idle mode)
"${pin_load[@]}" "$load" idle "127.0.0.1:${port[skiff_istio]}" 1 </dev/null >/dev/null
sleep 0.5

# ---------------------------------------------------------------- idle memory
echo "l4: $(date +%T) idle memory" >&2
mkfifo "$work/hold"
slab_kb() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
echo "name k base_kb loaded_kb slab_delta_kb" >"$work/idle.tsv"
for s in skiff_rw skiff_splice skiff_istio haproxy nginx; do
	k=$(idle_k "${fds[$s]}")
	base=$(rss_kb "${pid[$s]}")
	slab0=$(slab_kb)
	"${pin_load[@]}" "$load" idle "127.0.0.1:${port[$s]}" "$k" <"$work/hold" >"$work/idle.out" 2>"$work/idle.err" &
	cpid=$!
	exec 8>"$work/hold"
	for _ in $(seq 1 1200); do
		grep -q ready "$work/idle.out" 2>/dev/null && break
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.1
	done
	got=$(sed -n 's/^ready //p' "$work/idle.out")
	sleep 1
	loaded=$(rss_kb "${pid[$s]}")
	slab1=$(slab_kb)
	exec 8>&- # the client sees EOF and closes its connections
	wait "$cpid" || true
	if [ -z "$got" ] || [ "$got" -eq 0 ]; then
		echo "l4.sh: $s: idle connections failed: $(cat "$work/idle.err")" >&2
		got=0
	elif [ "$got" -lt "$k" ]; then
		echo "l4.sh: $s: only $got of $k idle connections: $(cat "$work/idle.err")" >&2
	fi
	echo "$s $got $base $loaded $((slab1 - slab0))" >>"$work/idle.tsv"
	echo "idle $s: $got connections, RSS $base -> $loaded KiB" >&2
	sleep 1 # let the proxy close its side
done

# ---------------------------------------------------------------- bulk
echo "l4: $(date +%T) bulk" >&2
echo "name mbps ticks" >"$work/bulk.tsv"
for r in $(seq 1 "$BULK_ROUNDS"); do
	n=${#order[@]}
	for i in $(seq 0 $((n - 1))); do
		s=${order[$(((i + r - 1) % n))]}
		c0=0
		[ -n "${pid[$s]:-}" ] && c0=$(cpu_ticks "${pid[$s]}")
		line=$("${pin_load[@]}" "$load" bulk "127.0.0.1:${port[$s]}" "$BULK_BYTES")
		c1=0
		[ -n "${pid[$s]:-}" ] && c1=$(cpu_ticks "${pid[$s]}")
		echo "$s $(kv mbps "$line") $((c1 - c0))" >>"$work/bulk.tsv"
		echo "bulk round $r $s: $line" >&2
	done
done

# ---------------------------------------------------------------- ping-pong
echo "l4: $(date +%T) ping-pong" >&2
# RTT_ROUNDS connections per setup, interleaved like bulk (a burst of noise on the machine
# then lands on every setup rather than one); the samples of all rounds are pooled.
RTT_ROUNDS=4
echo "name ticks rounds" >"$work/rtt.tsv"
for r in $(seq 1 "$RTT_ROUNDS"); do
	n=${#order[@]}
	for i in $(seq 0 $((n - 1))); do
		s=${order[$(((i + r - 1) % n))]}
		c0=0
		[ -n "${pid[$s]:-}" ] && c0=$(cpu_ticks "${pid[$s]}")
		line=$("${pin_load[@]}" "$load" rtt "127.0.0.1:${port[$s]}" $((RTT_N / RTT_ROUNDS)) "$work/$s.samples")
		c1=0
		[ -n "${pid[$s]:-}" ] && c1=$(cpu_ticks "${pid[$s]}")
		echo "$s $((c1 - c0)) $(($(kv n "$line") + $(kv warmup "$line")))" >>"$work/rtt.tsv"
		echo "rtt round $r $s: $line" >&2
	done
done

# ---------------------------------------------------------------- report
echo "l4: $(date +%T) done" >&2
labels=$(for s in "${order[@]}" skiff_istio; do printf '%s\t%s\n' "$s" "${label[$s]}"; done)
python3 - "$work" "$out" "$(getconf CLK_TCK)" "$BULK_BYTES" "$BULK_ROUNDS" "$RTT_N" "$IDLE_WANT" \
	"$NOFILE" "$pinning" "$labels" "$load0" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import statistics, sys
work, out, hz, bulk_bytes, rounds, rtt_n, idle_want, nofile, pinning, labels, load0, load1 = sys.argv[1:]
hz, bulk_bytes, rounds, idle_want, nofile = int(hz), int(bulk_bytes), int(rounds), int(idle_want), int(nofile)
label = dict(l.split("\t", 1) for l in labels.splitlines())
order = [s for s in label if s != "skiff_istio"]   # bulk and ping-pong

def rows(name):
    with open(f"{work}/{name}.tsv") as f:
        next(f)
        return [l.split() for l in f if l.strip()]

bulk = {}
for s, mbps, ticks in rows("bulk"):
    bulk.setdefault(s, []).append((float(mbps), int(ticks)))
rtt = {}
for s, t, n in rows("rtt"):
    ticks, rts = rtt.get(s, (0, 0))
    rtt[s] = (ticks + int(t), rts + int(n))
samples = {}
for s in rtt:
    with open(f"{work}/{s}.samples") as fh:
        v = sorted(float(x) for x in fh)
    samples[s] = (v[len(v) // 2], v[int(len(v) * 0.99)], len(v))
rtt = {s: (samples[s][0], samples[s][1], t, n) for s, (t, n) in rtt.items()}
idle = {s: (int(k), int(b), int(l)) for s, k, b, l, _ in rows("idle")}
slab = {s: int(d) / int(k) if int(k) else None for s, k, _, _, d in rows("idle")}

gib = bulk_bytes / 2**30
med = {s: statistics.median(m for m, _ in v) for s, v in bulk.items()}
lo = {s: min(m for m, _ in v) for s, v in bulk.items()}
hi = {s: max(m for m, _ in v) for s, v in bulk.items()}
cpu_gib = {s: sum(t for _, t in v) / hz / (gib * len(v)) for s, v in bulk.items()}
cpu_rtt = {s: v[2] / hz / (v[3] / 1000) for s, v in rtt.items()}
kib_conn = {s: (l - b) / k if k else None for s, (k, b, l) in idle.items()}

def f(x, fmt="%.2f"):
    return "–" if x is None else fmt % x

o = []
o.append("## L4: tcp proxy on loopback (bench/l4.sh, tool bench/tools/l4load.c)\n")
o.append(f"Sizes: `L4_BULK_BYTES={bulk_bytes} L4_BULK_ROUNDS={rounds} L4_RTT_N={rtt_n} L4_IDLE={idle_want}` "
         "(environment variables read by bench/l4.sh).\n")
o.append(f"Setups run side by side, interleaved, in the same run; one worker/thread per proxy, {pinning}. "
         f"Bulk: {bulk_bytes >> 20} MiB per connection, {rounds} rounds, median MB/s (10^6 B/s; min–max in "
         f"brackets). Ping-pong: 1-byte round trips, 4 connections per setup (interleaved like bulk) of "
         f"{int(rtt_n) // 4} timed + 1000 warm-up each, percentiles over the {int(rtt_n) // 4 * 4} timed samples pooled. "
         f"CPU: utime+stime of the proxy (all threads, master + workers) from /proc/PID/stat, "
         f"{1000 // hz} ms ticks; per GiB over all bulk rounds, per 1000 round trips including warm-up. "
         "Buffers: skiff's defaults (Envoy's 1 MiB per-connection limit: 64 KiB ring per direction, "
         "1 MiB pipe per direction with splice), HAProxy tune.bufsize 65536, nginx proxy_buffer_size 64k.\n")
o.append("| setup | bulk MB/s | vs direct | proxy CPU s/GiB | RTT p50 (us) | RTT p99 (us) | proxy CPU ms / 1000 RTT |")
o.append("| --- | --- | --- | --- | --- | --- | --- |")
for s in order:
    direct = s.startswith("direct")
    o.append(f"| {label[s]} | {med[s]:.0f} ({lo[s]:.0f}–{hi[s]:.0f}) | {med[s] / med['direct']:.2f} | "
             f"{'–' if direct else '%.3f' % cpu_gib[s]} | {rtt[s][0]:.1f} | {rtt[s][1]:.1f} | "
             f"{'–' if direct else '%.1f' % (cpu_rtt[s] * 1000)} |")
o.append("")
o.append(f"### Memory per idle connection (RSS, {idle_want} wanted)\n")
o.append(f"The fd limit here is {nofile} (hard limit; this sandbox cannot raise it), and each proxied "
         "connection holds 2 sockets in the proxy, 6 fds with skiff's splice relay (2 pipes more), so K "
         "below is the most each proxy can carry. Kernel socket and pipe memory is not in RSS: the last "
         "column is the machine's Slab growth per connection, which also holds the client's and the "
         "server's sockets (and anything else running), so only differences between rows mean much.\n")
o.append("| proxy | idle connections K | RSS before (KiB) | RSS with K (KiB) | KiB per connection (RSS) | kernel Slab Δ per connection (KiB) |")
o.append("| --- | --- | --- | --- | --- | --- |")
for s in [s for s in ["skiff_rw", "skiff_splice", "skiff_istio", "haproxy", "nginx"] if s in idle]:
    k, b, l = idle[s]
    o.append(f"| {label[s]} | {k} | {b} | {l} | {f(kib_conn[s])} | {f(slab[s], '%.1f')} |")
o.append("")

def verdict(ok):
    return "**met**" if ok else "**not met**"

t_rw = med["skiff_rw"] / med["direct"]
t_sp = med["skiff_splice"] / med["direct"]
c_sp = cpu_gib["skiff_splice"] / cpu_gib["haproxy"]
c_rw = cpu_gib["skiff_rw"] / cpu_gib["haproxy"]
p_rw = rtt["skiff_rw"][1] / rtt["haproxy"][1]
p_sp = rtt["skiff_splice"][1] / rtt["haproxy"][1]
m_rw, m_sp = kib_conn.get("skiff_rw"), kib_conn.get("skiff_splice")
o.append("### skiff against the targets\n")
o.append("| target | measured | verdict |")
o.append("| --- | --- | --- |")
o.append(f"| throughput ≥ 0.9× direct | read/write {t_rw:.2f}×, splice {t_sp:.2f}× | "
         f"read/write {verdict(t_rw >= 0.9)}, splice {verdict(t_sp >= 0.9)} |")
o.append(f"| CPU per GiB ≤ 0.5× HAProxy's (splice) | splice {c_sp:.2f}× ({cpu_gib['skiff_splice']:.3f} vs "
         f"{cpu_gib['haproxy']:.3f} s/GiB); read/write {c_rw:.2f}×; splice vs HAProxy with splice "
         f"{cpu_gib['skiff_splice'] / cpu_gib['haproxy_splice']:.2f}× | {verdict(c_sp <= 0.5)} |")
o.append(f"| RTT p99 no worse than HAProxy's | read/write {p_rw:.2f}× ({rtt['skiff_rw'][1]:.0f} vs "
         f"{rtt['haproxy'][1]:.0f} us), splice {p_sp:.2f}× | read/write {verdict(p_rw <= 1.0)}, "
         f"splice {verdict(p_sp <= 1.0)} |")
m_is = kib_conn.get("skiff_istio")
o.append(f"| ≤ 4 KiB per idle connection (4 KB read as 4 KiB) | read/write {f(m_rw)} KiB, splice {f(m_sp)} KiB, "
         f"with Istio's listener filters {f(m_is)} KiB (RSS only) | "
         f"read/write {verdict(m_rw is not None and m_rw <= 4)}, splice {verdict(m_sp is not None and m_sp <= 4)}, "
         f"with listener filters {verdict(m_is is not None and m_is <= 4)} |")
o.append("")
x = "direct_xcpu"
o.append(f"Reference for the cross-CPU hops every proxied path makes (twice each way): the same client and "
         f"server with the server on the proxies' CPU give {med[x]:.0f} MB/s and a p50 of {rtt[x][0]:.0f} us "
         f"(direct on one CPU: {med['direct']:.0f} MB/s, {rtt['direct'][0]:.0f} us). Load average (1 min) at "
         f"the start and end of this L4 run: {load0} / {load1}. This 2-vCPU VM's numbers move a lot with the "
         "host's and the other sessions' load (a run under load average ~5 measured 2-4x lower throughput, "
         "ms-sized p99s and ~3x the CPU per round trip for every proxy alike): compare setups within one run, "
         "and treat a verdict close to its threshold as noise.\n")
if idle.get("skiff_rw", (idle_want,))[0] < idle_want:
    o.append(f"{idle_want} idle connections were not possible through a proxy here (fd limit {nofile}); "
             "the figures above use the K shown.\n")
with open(out, "w") as fh:
    fh.write("\n".join(o))
PY
