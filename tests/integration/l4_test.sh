#!/usr/bin/env bash
# The L4 data plane end to end on loopback: tcp_proxy to real upstreams (python helpers),
# half-close, idle and connect timeouts, connect retries, circuit breakers, BlackHole and
# unknown clusters, weighted clusters, load balancing, filter chain matching with the TLS
# and HTTP inspectors, STRICT_DNS, drain, SIGTERM, access logs and the admin views of it.
# Each case writes its own bootstrap (free ports on 127.0.0.1) and runs skiff with
# --concurrency 2. The connect-timeout case needs root (a network namespace of its own
# whose iptables drops SYNs); without it, it is skipped.
. "$(dirname "$0")/lib.sh"

require_tools curl jq python3 openssl || {
	summary
	exit 1
}

# /usr/bin/python3 starts fast; a version manager's shim does not.
[ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3

_L4_NS=
_L4_PIDS=()
_l4_cleanup() {
	local rc=$? pid
	for pid in "${_L4_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	[ -n "$_L4_NS" ] && ip netns del "$_L4_NS" 2>/dev/null
	(exit "$rc")
	_t_cleanup
}
trap _l4_cleanup EXIT

# ---------------------------------------------------------------------------------------
# python helpers: upstream servers and clients (every socket operation has a timeout)

cat >"$TMP/l4h.py" <<'PY'
import hashlib, json, os, socket, sys, threading, time

DIR = os.path.dirname(os.path.abspath(__file__))

# ----------------------------------------------------------------------------- servers
def _log_accept(port):
    with open(os.path.join(DIR, "acc.%d" % port), "a") as f:
        f.write("x\n")

def _read_to_eof(c, timeout=5):
    c.settimeout(timeout)
    buf = b""
    while True:
        try:
            d = c.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return buf
        if not d:
            return buf
        buf += d

def _handle(c, mode, args):
    try:
        if mode == "echo":
            c.settimeout(30)
            while True:
                d = c.recv(262144)
                if not d:
                    break
                c.sendall(d)
        elif mode == "id":
            c.sendall(args[0].encode())
        elif mode == "eofreply":
            n = len(_read_to_eof(c))
            c.sendall(b"done:%d" % n)
        elif mode == "closefirst":
            c.sendall(b"bye")
            c.shutdown(socket.SHUT_WR)
            data = _read_to_eof(c)
            with open(args[0] + ".tmp", "wb") as f:
                f.write(data)
            os.rename(args[0] + ".tmp", args[0])
        elif mode == "record":
            # appends what arrives; closes after 0.3 s of quiet once something came
            c.settimeout(5)
            with open(args[0], "ab") as f:
                while True:
                    try:
                        d = c.recv(65536)
                    except (socket.timeout, ConnectionResetError):
                        break
                    if not d:
                        break
                    f.write(d)
                    f.flush()
                    c.settimeout(0.3)
        elif mode == "http":
            c.settimeout(5)
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    break
                buf += d
            with open(args[1], "ab") as f:
                f.write(buf)
            body = args[0].encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                      % (len(body), body))
    except OSError:
        pass
    finally:
        c.close()

def _accept_loop(ls, port, mode, args):
    while True:
        c, _ = ls.accept()
        _log_accept(port)
        if mode == "id":
            _handle(c, mode, args)
        else:
            threading.Thread(target=_handle, args=(c, mode, args), daemon=True).start()

def serve(ready, specs):
    for spec in specs:
        port, mode, *args = spec.split(":")
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", int(port)))
        ls.listen(1024)
        threading.Thread(target=_accept_loop, args=(ls, int(port), mode, args), daemon=True).start()
    open(ready, "w").close()
    # the test's trap kills us; should the test die without it, go when orphaned (or in 2 min)
    parent, deadline = os.getppid(), time.time() + 120
    while os.getppid() == parent and time.time() < deadline:
        time.sleep(0.2)

# ----------------------------------------------------------------------------- clients
def conn(port, src=None, timeout=3):
    s = socket.socket()
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s

def recv_exact(s, n, timeout=3):
    s.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            break
        buf += d
    return buf

def read_eof(s, timeout=3):
    """(data, how): how is EOF, RESET or TIMEOUT."""
    s.settimeout(timeout)
    buf = b""
    while True:
        try:
            d = s.recv(65536)
        except socket.timeout:
            return buf, "TIMEOUT"
        except ConnectionResetError:
            return buf, "RESET"
        if not d:
            return buf, "EOF"
        buf += d

def closed_within(s, timeout):
    """'CLOSED <seconds> <bytes>' once the peer closes, or 'OPEN <bytes>'."""
    t0 = time.time()
    data, how = read_eof(s, timeout)
    if how == "TIMEOUT":
        return "OPEN %d" % len(data)
    return "CLOSED %.3f %d" % (time.time() - t0, len(data))

def try_closed(port, timeout=2):
    """Connects and reports: REFUSED, CLOSED <s> <bytes> or OPEN <bytes>."""
    try:
        s = conn(port)
    except ConnectionRefusedError:
        return "REFUSED"
    try:
        return closed_within(s, timeout)
    finally:
        s.close()

def echo(port, msg, src=None):
    s = conn(port, src)
    try:
        s.sendall(msg)
        return recv_exact(s, len(msg))
    finally:
        s.close()

def admin(port, path, method="GET"):
    import urllib.error, urllib.request   # slow to import: only where needed
    r = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                               data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(r, timeout=3) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

def stat(aport, name):
    _, body = admin(aport, "/stats")
    for line in body.splitlines():
        k, _, v = line.partition(": ")
        if k == name:
            return v
    return "missing"

def wait_stat(aport, name, want, secs=3):
    deadline = time.time() + secs
    while True:
        v = stat(aport, name)
        if v == str(want) or time.time() > deadline:
            return v
        time.sleep(0.05)

def bulk(port, n):
    """Sends n random bytes and reads the echo concurrently: 'sha_sent sha_recv n_recv'."""
    data = os.urandom(n)
    s = conn(port, timeout=10)
    h = hashlib.sha256()
    got = [0]

    def reader():
        s.settimeout(10)
        while got[0] < n:
            try:
                d = s.recv(1 << 20)
            except OSError:
                return
            if not d:
                return
            h.update(d)
            got[0] += len(d)

    t = threading.Thread(target=reader)
    t.start()
    mv = memoryview(data)
    for off in range(0, n, 1 << 20):
        s.sendall(mv[off:off + (1 << 20)])
    t.join(20)
    s.close()
    return "%s %s %d" % (hashlib.sha256(data).hexdigest(), h.hexdigest(), got[0])

def ids(port, n, src=None):
    """n connections, each reads the upstream's id to EOF: {id: count}."""
    counts = {}
    for _ in range(n):
        s = conn(port, src)
        data, _ = read_eof(s)
        s.close()
        k = data.decode() or "-"
        counts[k] = counts.get(k, 0) + 1
    return counts

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(args[0], args[1:])
    elif cmd == "echo":
        print(echo(int(args[0]), args[1].encode()).decode(errors="replace"))
    elif cmd == "bulk":
        print(bulk(int(args[0]), int(args[1])))
    elif cmd == "closed":
        print(try_closed(int(args[0]), float(args[1]) if len(args) > 1 else 2))
    elif cmd == "ids":
        print(json.dumps(ids(int(args[0]), int(args[1]), args[2] if len(args) > 2 else None),
                         sort_keys=True))
PY

l4h() { "$PYTHON3" "$TMP/l4h.py" "$@"; }
# l4py ARGS...: runs the python snippet on stdin with the helpers imported (sys.argv[1:] = ARGS).
l4py() {
	"$PYTHON3" -c "import sys; sys.path.insert(0, '$TMP'); from l4h import *
$(cat)" "$@"
}
# l4py_bg OUT ARGS...: l4py in the background, output to OUT; sets BG_PID (the python process
# itself, so that the trap can kill it).
l4py_bg() {
	local out=$1
	shift
	"$PYTHON3" -c "import sys; sys.path.insert(0, '$TMP'); from l4h import *
$(cat)" "$@" >"$out" 2>&1 &
	BG_PID=$!
	_L4_PIDS+=("$BG_PID")
}

_N_SERVE=0
# start_servers SPEC...: one python process serving PORT:MODE[:ARGS] specs (see l4h.py);
# waits (bounded) until every socket listens.
start_servers() {
	local ready i
	_N_SERVE=$((_N_SERVE + 1))
	ready="$TMP/serve.$_N_SERVE.ready"
	"$PYTHON3" "$TMP/l4h.py" serve "$ready" "$@" >"$TMP/serve.$_N_SERVE.log" 2>&1 &
	_L4_PIDS+=($!)
	for i in $(seq 100); do
		[ -e "$ready" ] && return 0
		sleep 0.03
	done
	_t_fail "upstream servers $*" "not listening after 3 s: $(cat "$TMP/serve.$_N_SERVE.log")"
	return 1
}

fsize() { # FILE: its size in bytes, 0 when absent
	if [ -e "$1" ]; then wc -c <"$1" | tr -d ' '; else echo 0; fi
}

# ports VAR...: sets each VAR to a distinct free TCP port on 127.0.0.1 (one python start for
# all; never a port this script handed out before). Call it directly, not in $(...).
ports() {
	local got i v
	got=$("$PYTHON3" -c 'import socket, sys
n, taken, socks, got = int(sys.argv[1]), set(sys.argv[2].split()), [], []
while len(got) < n and len(socks) < 10 * n + 50:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    p = str(s.getsockname()[1])
    if p not in taken and p not in got:
        got.append(p)
print(" ".join(got))' "$#" "$_T_PORTS") || return 1
	read -ra got <<<"$got"
	if [ "${#got[@]}" -ne "$#" ]; then
		echo "ports: wanted $#, got ${got[*]}" >&2
		return 1
	fi
	for i in $(seq 0 $(($# - 1))); do
		_T_PORTS="$_T_PORTS${got[i]} "
	done
	i=0
	for v in "$@"; do
		printf -v "$v" '%s' "${got[i]}"
		i=$((i + 1))
	done
}

accepts() { # PORT: connections the helper upstream on PORT accepted
	if [ -e "$TMP/acc.$1" ]; then wc -l <"$TMP/acc.$1" | tr -d ' '; else echo 0; fi
}

# ---------------------------------------------------------------------------------------
# bootstraps

TCP_TYPE=type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy

# static_cluster NAME EXTRA-FIELDS PORT...: a STATIC cluster of 127.0.0.1:PORT endpoints
# (connect_timeout $CT, 1s by default).
static_cluster() {
	local name=$1 extra=$2 eps="" p
	shift 2
	for p in "$@"; do
		eps="$eps${eps:+,}{\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$p}}}}"
	done
	echo "{\"name\":\"$name\",\"type\":\"STATIC\",\"connect_timeout\":\"${CT:-1s}\"${extra:+,$extra},\"load_assignment\":{\"cluster_name\":\"$name\",\"endpoints\":[{\"lb_endpoints\":[$eps]}]}}"
}

# tcp_filter PREFIX CLUSTER [EXTRA-FIELDS]: a tcp_proxy network filter (CLUSTER "" = none).
tcp_filter() {
	local c=""
	[ -n "$2" ] && c=",\"cluster\":\"$2\""
	echo "{\"name\":\"envoy.filters.network.tcp_proxy\",\"typed_config\":{\"@type\":\"$TCP_TYPE\",\"stat_prefix\":\"$1\"$c${3:+,$3}}}"
}

# tcp_listener NAME PORT PREFIX CLUSTER [TCP-EXTRA] [LISTENER-EXTRA]
tcp_listener() {
	echo "{\"name\":\"$1\",\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$2}}${6:+,$6},\"filter_chains\":[{\"filters\":[$(tcp_filter "$3" "$4" "${5:-}")]}]}"
}

# boot NAME CLUSTERS LISTENERS [SKIFF-ARGS...]: writes $TMP/NAME.json (admin on a free port,
# $ADMIN), starts skiff --concurrency 2 on it and waits for its admin. CLUSTERS and
# LISTENERS are comma-separated JSON objects.
boot() {
	local name=$1 clusters=$2 listeners=$3
	shift 3
	ports ADMIN || return 1
	cat >"$TMP/$name.json" <<EOF
{"node": {"id": "l4-$name", "cluster": "l4"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $ADMIN}}},
 "static_resources": {"clusters": [$clusters], "listeners": [$listeners]}}
EOF
	if ! jq -e . "$TMP/$name.json" >/dev/null; then
		_t_fail "$name: bootstrap" "invalid JSON: $(cat "$TMP/$name.json")"
		return 1
	fi
	start_skiff -c "$name.json" --concurrency 2 "$@"
	if ! wait_admin "$ADMIN"; then
		_t_fail "$name: startup" "admin never answered; log: $(tail -n 20 "$SKIFF_LOG")"
		return 1
	fi
}

# stat NAME: the value of the stat NAME (exact) on $ADMIN, or "missing".
stat() {
	curl -s --max-time 3 "http://127.0.0.1:$ADMIN/stats" |
		awk -F': ' -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print "missing" }'
}

# wait_stat NAME WANT [SECONDS]: polls (0.05 s apart, 3 s by default) until NAME is WANT;
# prints the last value.
wait_stat() {
	local v i n
	n=$(awk -v s="${3:-3}" 'BEGIN { print int(s / 0.05) + 1 }')
	for i in $(seq "$n"); do
		v=$(stat "$1")
		[ "$v" == "$2" ] && break
		sleep 0.05
	done
	echo "$v"
}

# check_stat NAME WANT [SECONDS]: the stat reaches WANT (within the wait).
check_stat() {
	check_eq "${CASE:-}: $1 == $2" "$(wait_stat "$1" "$2" "${3:-3}")" "$2"
}

# check_range NAME VALUE LO HI: LO <= VALUE <= HI (decimals allowed).
check_range() {
	if awk -v v="$2" -v lo="$3" -v hi="$4" 'BEGIN { exit !(v != "" && v + 0 == v && v >= lo && v <= hi) }'; then
		_t_ok "$1"
		return 0
	fi
	_t_fail "$1" "$(printf %q "$2") not in [$3, $4]"
	return 1
}

# l4_stop: SIGTERM to $SKIFF_PID; it must exit 0 within 3 s with a clean log (no sanitizer
# report: the script also runs against ASan builds).
l4_stop() {
	kill -TERM "$SKIFF_PID" 2>/dev/null
	if wait_exit "$SKIFF_PID" 3; then
		check_eq "$CASE: skiff exits 0 on SIGTERM" "$EXIT_CODE" 0
	else
		kill -KILL "$SKIFF_PID" 2>/dev/null
		_t_fail "$CASE: skiff exits within 3 s of SIGTERM" "still running"
	fi
	check_not_contains "$CASE: no sanitizer report" "$(cat "$SKIFF_LOG")" "Sanitizer"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ======================================================================================
# 1 + 14. tcp_proxy to a STATIC cluster with an echo upstream; /clusters and /listeners
CASE="echo"
ports UP LP || exit 1
L="listener.127.0.0.1_$LP"
start_servers "$UP:echo"
if boot echo "$(static_cluster echo_cluster "" "$UP")" "$(tcp_listener echo "$LP" echo_tcp echo_cluster)"; then
	OUT=$(l4h echo "$LP" "hello through skiff")
	check_eq "echo: small payload round trip" "$OUT" "hello through skiff"
	T0=$(now_ms)
	OUT=$(l4h bulk "$LP" $((64 << 20)))
	read -r SHA_SENT SHA_RECV N_RECV <<<"$OUT"
	check_eq "echo: 64 MiB echoed back, byte count" "${N_RECV:-}" $((64 << 20))
	check_eq "echo: 64 MiB echoed back, sha256" "${SHA_RECV:-}" "${SHA_SENT:-x}"
	echo "# 64 MiB echo took $(($(now_ms) - T0)) ms"
	BYTES=$(((64 << 20) + 19))
	check_stat "$L.downstream_cx_active" 0
	check_stat "$L.downstream_cx_total" 2
	check_stat "$L.downstream_cx_destroy" 2
	check_stat "tcp.echo_tcp.downstream_cx_total" 2
	check_stat "tcp.echo_tcp.downstream_cx_rx_bytes_total" "$BYTES"
	check_stat "tcp.echo_tcp.downstream_cx_tx_bytes_total" "$BYTES"
	check_stat "cluster.echo_cluster.upstream_cx_total" 2
	check_stat "cluster.echo_cluster.upstream_cx_active" 0
	check_stat "cluster.echo_cluster.upstream_cx_rx_bytes_total" "$BYTES"
	check_stat "cluster.echo_cluster.upstream_cx_tx_bytes_total" "$BYTES"
	check_eq "echo: upstream accepted 2 connections" "$(accepts "$UP")" 2

	req "http://127.0.0.1:$ADMIN/clusters"
	check_match "/clusters lists the host ip:port" "$BODY" "^echo_cluster::127\.0\.0\.1:$UP::health_flags::healthy$"
	check_match "/clusters host cx_total" "$BODY" "^echo_cluster::127\.0\.0\.1:$UP::cx_total::2$"
	req "http://127.0.0.1:$ADMIN/listeners"
	check_eq "/listeners shows the bound address" "$BODY" "echo::127.0.0.1:$LP"$'\n'
	l4_stop
fi

# ======================================================================================
# 2. half-close in both directions
CASE="halfclose"
ports UP1 UP2 LP1 LP2 || exit 1
start_servers "$UP1:eofreply" "$UP2:closefirst:$TMP/closefirst.got"
if boot halfclose "$(static_cluster eofreply "" "$UP1"),$(static_cluster closefirst "" "$UP2")" \
	"$(tcp_listener a "$LP1" hc_a eofreply),$(tcp_listener b "$LP2" hc_b closefirst)"; then
	OUT=$(l4py "$LP1" <<'PY'
s = conn(int(sys.argv[1]))
s.sendall(b"abcdefgh")
s.shutdown(socket.SHUT_WR)
data, how = read_eof(s)
print(data.decode(), how)
PY
)
	check_eq "half-close: client shut its write side, upstream still replies" "$OUT" "done:8 EOF"

	OUT=$(l4py "$LP2" <<'PY'
s = conn(int(sys.argv[1]))
data, how = read_eof(s)          # the upstream said "bye" and shut its write side
print(data.decode(), how)
s.sendall(b"sent after the upstream's FIN")
s.shutdown(socket.SHUT_WR)
data, how = read_eof(s)
print(len(data), how)
PY
)
	check_eq "half-close: upstream shut first, client sees its data then EOF; then closes" "$OUT" $'bye EOF\n0 EOF'
	for _ in $(seq 60); do [ -e "$TMP/closefirst.got" ] && break; sleep 0.05; done
	check_eq "half-close: upstream received what the client sent after its FIN" \
		"$(cat "$TMP/closefirst.got" 2>/dev/null)" "sent after the upstream's FIN"
	check_stat "listener.127.0.0.1_$LP2.downstream_cx_active" 0
	check_stat "tcp.hc_b.downstream_cx_rx_bytes_total" 29
	check_stat "tcp.hc_b.downstream_cx_tx_bytes_total" 3
	l4_stop
fi

# ======================================================================================
# 3. idle_timeout
CASE="idle"
ports UP LP1 LP2 || exit 1
start_servers "$UP:echo"
if boot idle "$(static_cluster idle_echo "" "$UP")" \
	"$(tcp_listener short "$LP1" idle_short idle_echo '"idle_timeout":"0.5s"'),$(tcp_listener dflt "$LP2" idle_default idle_echo)"; then
	# The default (1 h) runs alongside: idle for 2 s, then still echoes.
	l4py_bg "$TMP/idle_default.out" "$LP2" <<'PY'
s = conn(int(sys.argv[1]))
print(closed_within(s, 2.0))
s.sendall(b"still-there")
print(recv_exact(s, 11).decode())
PY
	DPID=$BG_PID
	OUT=$(l4py "$LP1" <<'PY'
s = conn(int(sys.argv[1]))
print(closed_within(s, 3.0))
PY
)
	check_match "idle_timeout 0.5s: skiff closes an idle connection" "$OUT" '^CLOSED [0-9.]+ 0$'
	check_range "idle_timeout 0.5s: closed after 0.4-1.0 s" "$(echo "$OUT" | awk '{print $2}')" 0.4 1.0
	check_stat "tcp.idle_short.idle_timeout" 1
	check_stat "cluster.idle_echo.upstream_cx_destroy_local" 1
	wait "$DPID"
	check_eq "default idle timeout (1 h): open after 2 s idle, still relays" \
		"$(cat "$TMP/idle_default.out")" $'OPEN 0\nstill-there'
	check_stat "tcp.idle_default.idle_timeout" 0
	l4_stop
fi

# ======================================================================================
# 4. connect failures: refused, max_connect_attempts, connect timeout (netns)
CASE="connfail"
ports DEAD LP1 LP2 || exit 1
if boot connfail "$(static_cluster refused "" "$DEAD"),$(static_cluster refused3 "" "$DEAD")" \
	"$(tcp_listener one "$LP1" cf_one refused),$(tcp_listener three "$LP2" cf_three refused3 '"max_connect_attempts":3')"; then
	OUT=$(l4h closed "$LP1")
	check_match "refused upstream: downstream closed at once, no data" "$OUT" '^CLOSED 0\.[0-4][0-9]* 0$'
	check_stat "cluster.refused.upstream_cx_connect_fail" 1
	# Envoy counts running out of attempts with the default max_connect_attempts (1) too
	check_stat "cluster.refused.upstream_cx_connect_attempts_exceeded" 1
	check_stat "cluster.refused.upstream_cx_active" 0
	check_stat "listener.127.0.0.1_$LP1.downstream_cx_active" 0
	OUT=$(l4h closed "$LP2")
	check_match "max_connect_attempts 3: downstream closed, no data" "$OUT" '^CLOSED 0\.[0-4][0-9]* 0$'
	check_stat "cluster.refused3.upstream_cx_connect_fail" 3
	check_stat "cluster.refused3.upstream_cx_total" 3
	check_stat "cluster.refused3.upstream_cx_connect_attempts_exceeded" 1
	check_stat "cluster.refused3.upstream_cx_active" 0
	l4_stop
fi

CASE="connect_timeout"
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! command -v iptables >/dev/null; then
	skip "connect timeout" "needs root, ip and iptables (a network namespace that drops SYNs)"
elif ! ip netns add "skiff-l4-$$" 2>/dev/null; then
	skip "connect timeout" "cannot create a network namespace"
else
	_L4_NS="skiff-l4-$$"
	NSX=(ip netns exec "$_L4_NS")
	ports BH LP NSADMIN || exit 1
	if "${NSX[@]}" ip link set lo up && "${NSX[@]}" iptables -A INPUT -p tcp --dport "$BH" --syn -j DROP; then
		cat >"$TMP/ns.json" <<EOF
{"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $NSADMIN}}},
 "static_resources": {
   "clusters": [$(CT=0.3s static_cluster blackholed "" "$BH")],
   "listeners": [$(tcp_listener ns "$LP" ns_tcp blackholed)]}}
EOF
		(cd "$TMP" && exec "${NSX[@]}" "$SKIFF_BIN" -c ns.json --concurrency 2) >"$TMP/ns.log" 2>&1 &
		NSPID=$!
		_T_PIDS+=("$NSPID")
		up=0
		for _ in $(seq 100); do
			"${NSX[@]}" curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$NSADMIN/ready" && { up=1; break; }
			_t_running "$NSPID" || break
			sleep 0.05
		done
		if [ "$up" -eq 1 ]; then
			nsstat() {
				"${NSX[@]}" curl -s --max-time 3 "http://127.0.0.1:$NSADMIN/stats" |
					awk -F': ' -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print "missing" }'
			}
			check_eq "netns: the connect timeout is 0.3 s" \
				"$("${NSX[@]}" curl -s "http://127.0.0.1:$NSADMIN/config_dump" | jq -r '.configs[1].static_clusters[0].cluster.connect_timeout')" "0.300s"
			OUT=$("${NSX[@]}" "$PYTHON3" "$TMP/l4h.py" closed "$LP" 3)
			check_match "connect timeout: downstream closed, no data" "$OUT" '^CLOSED [0-9.]+ 0$'
			check_range "connect timeout 0.3 s: downstream closed after 0.25-1.0 s" \
				"$(echo "$OUT" | awk '{print $2}')" 0.25 1.0
			check_eq "connect timeout: upstream_cx_connect_timeout == 1" "$(nsstat cluster.blackholed.upstream_cx_connect_timeout)" 1
			check_eq "connect timeout: upstream_cx_connect_fail == 1" "$(nsstat cluster.blackholed.upstream_cx_connect_fail)" 1
			check_eq "connect timeout: upstream_cx_active back to 0" "$(nsstat cluster.blackholed.upstream_cx_active)" 0
		else
			_t_fail "netns: skiff startup" "$(tail -n 20 "$TMP/ns.log")"
		fi
		SKIFF_PID=$NSPID SKIFF_LOG="$TMP/ns.log" l4_stop
	else
		_t_fail "netns: setup" "cannot configure lo or iptables in $_L4_NS"
	fi
	ip netns del "$_L4_NS" 2>/dev/null
	_L4_NS=
fi

# ======================================================================================
# 5. circuit breaker: max_connections 2
CASE="breaker"
ports UP LP || exit 1
start_servers "$UP:echo"
if boot breaker "$(static_cluster cb '"circuit_breakers":{"thresholds":[{"max_connections":2}]}' "$UP")" \
	"$(tcp_listener cb "$LP" cb_tcp cb)"; then
	OUT=$(l4py "$LP" "$ADMIN" <<'PY'
lp, ap = int(sys.argv[1]), int(sys.argv[2])
held = []
for i in range(2):
    s = conn(lp)
    s.sendall(b"held%d" % i)
    print(recv_exact(s, 5).decode())
    held.append(s)
s3 = conn(lp)
print("third:", closed_within(s3, 2.0))
held[0].close()
print("active after one closed:", wait_stat(ap, "cluster.cb.upstream_cx_active", 1))
print("fourth:", echo(lp, b"again").decode())
held[1].sendall(b"still")
print("second still:", recv_exact(held[1], 5).decode())
PY
)
	check_eq "breaker: two connections relay" "$(echo "$OUT" | sed -n 1,2p)" $'held0\nheld1'
	check_match "breaker: the third is closed at once without data" "$OUT" '^third: CLOSED 0\.[0-4][0-9]* 0$'
	check_match "breaker: a slot frees when a connection ends" "$OUT" '^active after one closed: 1$'
	check_match "breaker: then a new connection relays" "$OUT" '^fourth: again$'
	check_match "breaker: the held connection is unaffected" "$OUT" '^second still: still$'
	check_stat "cluster.cb.upstream_cx_overflow" 1
	check_stat "cluster.cb.upstream_cx_total" 3
	check_eq "breaker: the upstream saw 3 connections (not the overflowing one)" "$(accepts "$UP")" 3
	l4_stop
fi

# ======================================================================================
# 6. BlackHoleCluster and an unknown cluster
CASE="blackhole"
ports LP1 LP2 || exit 1
if boot blackhole '{"name":"BlackHoleCluster","type":"STATIC","connect_timeout":"1s"}' \
	"$(tcp_listener bh "$LP1" BlackHoleCluster BlackHoleCluster),$(tcp_listener nr "$LP2" no_route no_such_cluster)"; then
	OUT=$(l4h closed "$LP1")
	check_match "BlackHoleCluster: connection closed at once" "$OUT" '^CLOSED 0\.[0-4][0-9]* 0$'
	check_stat "cluster.BlackHoleCluster.upstream_cx_none_healthy" 1
	check_stat "cluster.BlackHoleCluster.upstream_cx_total" 0
	check_stat "tcp.BlackHoleCluster.downstream_cx_total" 1
	OUT=$(l4h closed "$LP2")
	check_match "unknown cluster: connection closed at once" "$OUT" '^CLOSED 0\.[0-4][0-9]* 0$'
	check_stat "tcp.no_route.downstream_cx_no_route" 1
	check_stat "listener.127.0.0.1_$LP2.downstream_cx_destroy" 1
	l4_stop
fi

# ======================================================================================
# 7. weighted_clusters 1:3
CASE="weighted"
ports UPA UPB LP || exit 1
start_servers "$UPA:id:A" "$UPB:id:B"
if boot weighted "$(static_cluster wa "" "$UPA"),$(static_cluster wb "" "$UPB")" \
	"$(tcp_listener w "$LP" weighted "" '"weighted_clusters":{"clusters":[{"name":"wa","weight":1},{"name":"wb","weight":3}]}')"; then
	OUT=$(l4h ids "$LP" 400)
	NA=$(echo "$OUT" | jq '.A // 0')
	NB=$(echo "$OUT" | jq '.B // 0')
	check_eq "weighted: every connection reached A or B" "$((NA + NB))" 400
	check_range "weighted 1:3: A got 60-140 of 400" "$NA" 60 140
	check_stat "cluster.wa.upstream_cx_total" "$NA"
	check_stat "cluster.wb.upstream_cx_total" "$NB"
	check_eq "weighted: the upstreams accepted 400 in all" "$(($(accepts "$UPA") + $(accepts "$UPB")))" 400
	l4_stop
fi

# ======================================================================================
# 8. load balancing: ROUND_ROBIN and RING_HASH over three upstreams
CASE="lb"
ports U1 U2 U3 LP1 LP2 || exit 1
start_servers "$U1:id:1" "$U2:id:2" "$U3:id:3"
if boot lb "$(static_cluster rr '"lb_policy":"ROUND_ROBIN"' "$U1" "$U2" "$U3"),$(static_cluster rh '"lb_policy":"RING_HASH"' "$U1" "$U2" "$U3")" \
	"$(tcp_listener rr "$LP1" rr rr),$(tcp_listener rh "$LP2" rh rh)"; then
	OUT=$(l4h ids "$LP1" 30)
	# Each worker has its own round robin: whatever the split of the 30 connections between
	# the two workers, every host gets floor or ceil of a third of each worker's share: 9-11.
	# (The brief's 5-15 would also pass a random balancer most of the time.)
	for id in 1 2 3; do
		check_range "ROUND_ROBIN: host $id got 9-11 of 30 ($OUT)" "$(echo "$OUT" | jq ".\"$id\" // 0")" 9 11
	done
	req "http://127.0.0.1:$ADMIN/clusters"
	CL=$BODY
	for p in "$U1" "$U2" "$U3"; do
		check_match "/clusters lists rr host 127.0.0.1:$p" "$CL" "^rr::127\.0\.0\.1:$p::cx_total::(9|10|11)$"
	done
	OUT=$(l4h ids "$LP2" 20)
	check_eq "RING_HASH: 20 connections from 127.0.0.1 land on one host" "$(echo "$OUT" | jq 'length')" 1
	OUT=$(l4py "$LP2" <<'PY'
lp = int(sys.argv[1])
hosts, consistent = set(), True
for i in range(2, 14):
    c = ids(lp, 3, "127.0.0.%d" % i)
    consistent &= len(c) == 1
    hosts |= set(c)
print(consistent, len(hosts))
PY
)
	check_match "RING_HASH: each source IP sticks to one host, sources spread (consistent, hosts)" "$OUT" '^True [23]$'
	l4_stop
fi

# ======================================================================================
# 9. filter chain matching: tls_inspector (SNI), http_inspector (ALPN), no match
CASE="fcm"
ports UA UB UC UD UE LT LH LN || exit 1
start_servers "$UA:record:$TMP/A.bin" "$UB:record:$TMP/B.bin" "$UC:http:C:$TMP/C.bin" \
	"$UD:record:$TMP/D.bin" "$UE:echo"
TLS_INSP='{"name":"envoy.filters.listener.tls_inspector","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}'
HTTP_INSP='{"name":"envoy.filters.listener.http_inspector","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"}}'
LIS_TLS="{\"name\":\"sni\",\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$LT}},
  \"listener_filters\":[$TLS_INSP],
  \"filter_chains\":[
    {\"filter_chain_match\":{\"server_names\":[\"a.example.com\"]},\"filters\":[$(tcp_filter sni_a ca)]},
    {\"filters\":[$(tcp_filter sni_b cb)]}]}"
LIS_HTTP="{\"name\":\"alpn\",\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$LH}},
  \"listener_filters\":[$HTTP_INSP],
  \"filter_chains\":[
    {\"filter_chain_match\":{\"application_protocols\":[\"http/1.1\"]},\"filters\":[$(tcp_filter http_c cc)]}],
  \"default_filter_chain\":{\"filters\":[$(tcp_filter raw_d cd)]}}"
LIS_NONE="{\"name\":\"nomatch\",\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":$LN}},
  \"filter_chains\":[{\"filter_chain_match\":{\"destination_port\":9999},\"filters\":[$(tcp_filter nm ce)]}]}"
if boot fcm "$(static_cluster ca "" "$UA"),$(static_cluster cb "" "$UB"),$(static_cluster cc "" "$UC"),$(static_cluster cd "" "$UD"),$(static_cluster ce "" "$UE")" \
	"$LIS_TLS,$LIS_HTTP,$LIS_NONE"; then
	HELLO_PY='import sys
d = open(sys.argv[1], "rb").read()
ok = len(d) >= 6 and d[0] == 0x16 and d[5] == 0x01 and len(d) >= 5 + int.from_bytes(d[3:5], "big")
print("clienthello" if ok else "not a whole ClientHello: %r" % d[:16], sys.argv[2].encode() in d)'
	timeout 5 openssl s_client -connect "127.0.0.1:$LT" -servername a.example.com </dev/null >/dev/null 2>&1
	for _ in $(seq 40); do [ -s "$TMP/A.bin" ] && break; sleep 0.05; done
	check_eq "SNI a.example.com -> A: a whole ClientHello carrying the SNI" \
		"$("$PYTHON3" -c "$HELLO_PY" "$TMP/A.bin" a.example.com 2>&1)" "clienthello True"
	check_eq "SNI a.example.com: nothing reached B" "$(fsize "$TMP/B.bin")" 0
	SIZE_A=$(fsize "$TMP/A.bin")
	timeout 5 openssl s_client -connect "127.0.0.1:$LT" -servername other.example.com </dev/null >/dev/null 2>&1
	for _ in $(seq 40); do [ -s "$TMP/B.bin" ] && break; sleep 0.05; done
	check_eq "SNI other.example.com -> B (fallback chain): a whole ClientHello" \
		"$("$PYTHON3" -c "$HELLO_PY" "$TMP/B.bin" other.example.com 2>&1)" "clienthello True"
	check_eq "SNI other.example.com: nothing more reached A" "$(fsize "$TMP/A.bin")" "$SIZE_A"
	check_stat "tcp.sni_a.downstream_cx_total" 1
	check_stat "tcp.sni_b.downstream_cx_total" 1

	req --http1.1 "http://127.0.0.1:$LH/l4-path"
	check_eq "http_inspector: HTTP/1.1 request -> C (http/1.1 chain)" "$CODE:$BODY" "200:C"
	check_match "http_inspector: C got the request line intact" "$(cat "$TMP/C.bin" 2>/dev/null)" '^GET /l4-path HTTP/1\.1'
	OUT=$(l4py "$LH" <<'PY'
s = conn(int(sys.argv[1]))
s.sendall(b"GET /old HTTP/1.0\r\n\r\n")
print(read_eof(s, 2)[1])
PY
)
	for _ in $(seq 40); do [ -s "$TMP/D.bin" ] && break; sleep 0.05; done
	check_eq "http_inspector: HTTP/1.0 request -> D (default chain)" "$(head -c 16 "$TMP/D.bin" 2>/dev/null)" "GET /old HTTP/1."
	# Raw bytes: "hello" alone could still become a request line with a custom method (Envoy's
	# Balsa-based inspector, 1.39+, waits for the line too), so the client ends its side and
	# the inspector decides with what it has; bytes no request line can start with are
	# routed at once, while the connection is open.
	: >"$TMP/D.bin"
	OUT=$(l4py "$LH" "$TMP/D.bin" <<'PY'
s = conn(int(sys.argv[1]))
s.sendall(b"hello")
s.shutdown(socket.SHUT_WR)
print(read_eof(s, 2.0)[1])     # D closes 0.3 s after the bytes arrive
PY
)
	check_eq "http_inspector: raw 'hello' then EOF reaches D" "$(cat "$TMP/D.bin" 2>/dev/null)|$OUT" "hello|EOF"
	: >"$TMP/D.bin"
	OUT=$(l4py "$LH" "$TMP/D.bin" <<'PY'
s = conn(int(sys.argv[1]))
s.sendall(b"hello, world")     # ',' cannot be part of a method
t0 = time.time()
while time.time() < t0 + 1.0 and open(sys.argv[2], "rb").read() != b"hello, world":
    time.sleep(0.02)
print("%r %.1f" % (open(sys.argv[2], "rb").read(), time.time() - t0))
s.close()
PY
)
	check_match "http_inspector: raw 'hello, world' reaches D at once, connection open" "$OUT" "^b'hello, world' 0\.[0-4]$"
	: >"$TMP/D.bin"
	OUT=$(l4py "$LH" <<'PY'
s = conn(int(sys.argv[1]))
s.sendall(b"hello world\r\n")
print(read_eof(s, 2.0)[1])
PY
)
	check_eq "http_inspector: a non-HTTP line reaches D" "$(cat "$TMP/D.bin" 2>/dev/null)" $'hello world\r'
	check_stat "tcp.http_c.downstream_cx_total" 1

	OUT=$(l4h closed "$LN")
	check_match "no filter chain matches: connection closed at once" "$OUT" '^CLOSED 0\.[0-4][0-9]* 0$'
	check_stat "listener.127.0.0.1_$LN.no_filter_chain_match" 1
	check_stat "listener.127.0.0.1_$LN.downstream_cx_total" 0
	check_eq "no filter chain matches: the upstream saw nothing" "$(accepts "$UE")" 0
	l4_stop
fi

# ======================================================================================
# 10. STRICT_DNS "localhost", V4_ONLY
CASE="dns"
ports UP LP || exit 1
start_servers "$UP:echo"
DNS_CLUSTER="{\"name\":\"dns\",\"type\":\"STRICT_DNS\",\"connect_timeout\":\"1s\",\"dns_lookup_family\":\"V4_ONLY\",
  \"load_assignment\":{\"cluster_name\":\"dns\",\"endpoints\":[{\"lb_endpoints\":[
    {\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"localhost\",\"port_value\":$UP}}}}]}]}}"
if boot dns "$DNS_CLUSTER" "$(tcp_listener dns "$LP" dns_tcp dns)"; then
	check_stat "cluster.dns.membership_total" 1
	check_stat "cluster.dns.membership_healthy" 1
	check_eq "STRICT_DNS localhost: traffic reaches the upstream" "$(l4h echo "$LP" via-dns)" "via-dns"
	check_eq "STRICT_DNS localhost: upstream accepted it" "$(accepts "$UP")" 1
	req "http://127.0.0.1:$ADMIN/clusters"
	check_match "STRICT_DNS: /clusters shows the resolved 127.0.0.1:$UP" "$BODY" "^dns::127\.0\.0\.1:$UP::cx_total::1$"
	l4_stop
fi

# ======================================================================================
# 11. drain: POST /drain_listeners, then ?inboundonly
CASE="drain"
ports UP LP || exit 1
start_servers "$UP:echo"
if boot drain "$(static_cluster drain_echo "" "$UP")" "$(tcp_listener d "$LP" drain_tcp drain_echo)" --drain-time-s 2; then
	OUT=$(l4py "$LP" "$ADMIN" <<'PY'
import time
lp, ap = int(sys.argv[1]), int(sys.argv[2])
s = conn(lp, timeout=5)
s.sendall(b"one")
print("before:", recv_exact(s, 3).decode())
t0 = time.time()
print("drain:", admin(ap, "/drain_listeners", "POST")[0])
print("state:", stat(ap, "server.state"))
code, body = admin(ap, "/ready")
print("ready:", code, body.strip())
time.sleep(0.2)
print("new:", try_closed(lp, 1.0).split(" ")[0])
time.sleep(max(0, t0 + 1.2 - time.time()))
s.sendall(b"two")
print("during:", recv_exact(s, 3).decode())
res = closed_within(s, 3.5)
print("closed:", res.split(" ")[0], "%.1f" % (time.time() - t0))
PY
)
	check_match "drain: the connection works before" "$OUT" '^before: one$'
	check_match "drain: POST /drain_listeners 200" "$OUT" '^drain: 200$'
	check_match "drain: server.state 1 (DRAINING)" "$OUT" '^state: 1$'
	check_match "drain: /ready 503 DRAINING" "$OUT" '^ready: 503 DRAINING$'
	check_match "drain: a new connection is refused or closed" "$OUT" '^new: (REFUSED|CLOSED)$'
	check_eq "drain: the new connection never reached the upstream" "$(accepts "$UP")" 1
	check_match "drain: the open connection still relays during the drain time" "$OUT" '^during: two$'
	check_match "drain: skiff closes it after the drain time (2 s), within 3 s" "$OUT" '^closed: CLOSED (1\.[89]|2\.[0-9]|3\.0)$'
	check "drain: skiff keeps running (no exit without SIGTERM)" _t_running "$SKIFF_PID"
	l4_stop
fi

CASE="drain_inbound"
ports UP LPI LPO || exit 1
start_servers "$UP:echo"
if boot drain_inbound "$(static_cluster in_echo "" "$UP")" \
	"$(tcp_listener inbound "$LPI" in_tcp in_echo "" '"traffic_direction":"INBOUND"'),$(tcp_listener outbound "$LPO" out_tcp in_echo "" '"traffic_direction":"OUTBOUND"')" \
	--drain-time-s 1; then
	OUT=$(l4py "$LPI" "$LPO" "$ADMIN" <<'PY'
import time
lpi, lpo, ap = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
pre = conn(lpo, timeout=5)
pre.sendall(b"pre")
print("pre:", recv_exact(pre, 3).decode())
t0 = time.time()
print("drain:", admin(ap, "/drain_listeners?inboundonly&graceful", "POST")[0])
time.sleep(0.2)
print("inbound new:", try_closed(lpi, 1.0).split(" ")[0])
print("outbound new:", echo(lpo, b"new").decode())
time.sleep(max(0, t0 + 1.6 - time.time()))     # past the drain time
print("outbound after drain time:", echo(lpo, b"late").decode())
try:
    pre.sendall(b"old")
    print("outbound pre-drain connection after drain time:", recv_exact(pre, 3).decode() or "closed")
except OSError as e:
    print("outbound pre-drain connection after drain time:", type(e).__name__)
PY
)
	check_match "inboundonly: POST 200" "$OUT" '^drain: 200$'
	check_match "inboundonly: the INBOUND listener stops accepting" "$OUT" '^inbound new: (REFUSED|CLOSED)$'
	check_match "inboundonly: the OUTBOUND listener still accepts" "$OUT" '^outbound new: new$'
	check_match "inboundonly: the OUTBOUND listener accepts after the drain time" "$OUT" '^outbound after drain time: late$'
	check_match "inboundonly: an OUTBOUND connection is not cut at the drain time" "$OUT" \
		'^outbound pre-drain connection after drain time: old$'
	l4_stop
fi

# ======================================================================================
# 12. SIGTERM: with an open connection (drain time 2 s), and without
CASE="sigterm"
ports UP LP || exit 1
start_servers "$UP:echo"
if boot sigterm "$(static_cluster st_echo "" "$UP")" "$(tcp_listener st "$LP" st_tcp st_echo)" --drain-time-s 2; then
	l4py_bg "$TMP/sigterm_client.out" "$LP" <<'PY'
s = conn(int(sys.argv[1]), timeout=5)
s.sendall(b"hold")
print(recv_exact(s, 4).decode(), flush=True)
print(closed_within(s, 5.0).split(" ")[0])
PY
	CPID=$BG_PID
	for _ in $(seq 60); do [ -s "$TMP/sigterm_client.out" ] && break; sleep 0.05; done
	check_eq "SIGTERM: the connection is open" "$(head -n 1 "$TMP/sigterm_client.out")" hold
	T0=$(now_ms)
	kill -TERM "$SKIFF_PID"
	if wait_exit "$SKIFF_PID" 5; then
		check_eq "SIGTERM with an open connection: exit status 0" "$EXIT_CODE" 0
		check_range "SIGTERM with an open connection: exits after the drain time (1.8-3.0 s)" \
			"$(awk -v ms=$(($(now_ms) - T0)) 'BEGIN { print ms / 1000 }')" 1.8 3.0
	else
		_t_fail "SIGTERM with an open connection: exits within 5 s" "still running"
	fi
	wait "$CPID"
	check_eq "SIGTERM: the open connection is closed" "$(sed -n 2p "$TMP/sigterm_client.out")" CLOSED
	check_not_contains "SIGTERM with an open connection: no sanitizer report" "$(cat "$SKIFF_LOG")" "Sanitizer"
fi
if boot sigterm_idle "$(static_cluster st_echo "" "$UP")" "$(tcp_listener st "$LP" st_tcp st_echo)" --drain-time-s 2; then
	check_eq "SIGTERM idle: the listener relays first" "$(l4h echo "$LP" x)" x
	T0=$(now_ms)
	kill -TERM "$SKIFF_PID"
	if wait_exit "$SKIFF_PID" 3; then
		check_eq "SIGTERM without connections: exit status 0" "$EXIT_CODE" 0
		check_range "SIGTERM without connections: exits at once (< 1 s)" \
			"$(awk -v ms=$(($(now_ms) - T0)) 'BEGIN { print ms / 1000 }')" 0 0.99
	else
		_t_fail "SIGTERM without connections: exits within 3 s" "still running"
	fi
fi

# ======================================================================================
# 13. access log
CASE="access_log"
ports UP LP1 LP2 LP3 DEAD || exit 1
start_servers "$UP:eofreply"
ALOG="$TMP/access.log"
AL="\"access_log\":[{\"name\":\"envoy.access_loggers.file\",\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\",\"path\":\"$ALOG\",\"log_format\":{\"text_format\":\"%DOWNSTREAM_REMOTE_ADDRESS% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% %BYTES_RECEIVED% %BYTES_SENT% %RESPONSE_FLAGS%\\n\"}}}]"
if boot access_log "$(static_cluster al_cluster "" "$UP"),$(static_cluster al_refused "" "$DEAD"),{\"name\":\"BlackHoleCluster\",\"type\":\"STATIC\",\"connect_timeout\":\"1s\"}" \
	"$(tcp_listener al "$LP1" al_tcp al_cluster "$AL"),$(tcp_listener al_bh "$LP2" al_bh BlackHoleCluster "$AL"),$(tcp_listener al_ref "$LP3" al_ref al_refused "$AL")"; then
	OUT=$(l4py "$LP1" <<'PY'
s = conn(int(sys.argv[1]))
me = "%s:%d" % s.getsockname()
s.sendall(b"abcdefg")
s.shutdown(socket.SHUT_WR)
data, how = read_eof(s)
s.close()
print(me, data.decode())
PY
)
	read -r ME REPLY <<<"$OUT"
	check_eq "access_log: the connection relays" "${REPLY:-}" "done:7"
	for _ in $(seq 60); do grep -q "^$ME " "$ALOG" 2>/dev/null && break; sleep 0.05; done
	check_eq "access_log: one line with the connection's values" "$(grep "^$ME " "$ALOG" 2>/dev/null)" \
		"$ME 127.0.0.1:$UP al_cluster 7 6 -"
	OUT=$(l4py "$LP2" <<'PY'
s = conn(int(sys.argv[1]))
me = "%s:%d" % s.getsockname()
read_eof(s)
print(me)
PY
)
	for _ in $(seq 60); do grep -q "^$OUT " "$ALOG" 2>/dev/null && break; sleep 0.05; done
	check_eq "access_log: BlackHole connection logged with UH" "$(grep "^$OUT " "$ALOG" 2>/dev/null)" \
		"$OUT - BlackHoleCluster 0 0 UH"
	OUT=$(l4py "$LP3" <<'PY'
s = conn(int(sys.argv[1]))
me = "%s:%d" % s.getsockname()
read_eof(s)
print(me)
PY
)
	for _ in $(seq 60); do grep -q "^$OUT " "$ALOG" 2>/dev/null && break; sleep 0.05; done
	check_eq "access_log: refused upstream logged with UF,URX (as Envoy)" "$(grep "^$OUT " "$ALOG" 2>/dev/null)" \
		"$OUT 127.0.0.1:$DEAD al_refused 0 0 UF,URX"
	check_eq "access_log: one line per connection" "$(wc -l <"$ALOG" | tr -d ' ')" 3
	l4_stop
fi

summary
