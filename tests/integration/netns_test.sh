#!/usr/bin/env bash
# Istio's sidecar data path between two "pods": network namespaces this script creates,
# joined by a veth pair (10.200.0.1/24 = pod-a, 10.200.0.2/24 = pod-b, addresses that
# exist only inside them). In each pod, skiff-iptables applies the istio-init container's
# args from the injected pod spec, and skiff runs as uid 1337 with a sidecar bootstrap
# (examples/bootstrap/sidecar.json); the apps run as uid 1000. Then:
#   pod-a app --(OUTPUT: 15001)--> skiff-a --(uid 1337: not captured)--> veth -->
#   pod-b (PREROUTING: 15006) --> skiff-b --(from 127.0.0.6: not captured)--> pod-b app
# checked through the apps' own view (the peer address the server saw, a sha256 over a
# large transfer) and skiff's /stats (who captured what, and nothing twice).
#
# Needs root, iproute2 (ip netns), iptables and setpriv; skips with the reason otherwise.
# Everything it creates (namespaces, veth, processes) is removed on exit; every wait is
# bounded. The host's network and rules are never touched.
: "${SKIFF_BUILD:=$(cd "$(dirname "$0")/../.." && pwd)/build-dev}"
: "${SKIFF_BIN:=$SKIFF_BUILD/proxy/skiff}"
export SKIFF_BIN
. "$(dirname "$0")/lib.sh"

IPT="$SKIFF_BUILD/iptables/skiff-iptables"
case "$IPT" in /*) ;; *) IPT="$PWD/$IPT" ;; esac
BOOT="$SKIFF_SRC/examples/bootstrap/sidecar.json"
INJ="$SKIFF_CONFORMANCE/istio/inject/hello.yaml.injected"
# The large transfer (bytes) and its bound (seconds).
BIG=${SKIFF_NETNS_BYTES:-$((1 << 30))}
BIG_TIMEOUT=60

NSA="skiff-pod-a-$$"
NSB="skiff-pod-b-$$"
PROXY_UID=1337
APP_UID=1000
A_IP=10.200.0.1
B_IP=10.200.0.2

for f in "$SKIFF_BIN" "$IPT"; do
	if [ ! -x "$f" ]; then
		_t_fail "binary" "$f is not built"
		summary
		exit 1
	fi
done
require_tools jq curl || {
	summary
	exit 1
}

# ---------------------------------------------------------------------------------------
# Can this host run it at all? (sets WHY when not; runs in this shell so that the trap
# knows which namespaces are ours to delete)

NS_MADE=()
POD_PIDS=()
WHY=""

netns_ready() {
	local t ns
	[ "$(id -u)" -eq 0 ] || {
		WHY="not root"
		return 1
	}
	for t in ip ss iptables iptables-restore iptables-save setpriv; do
		command -v "$t" >/dev/null 2>&1 || {
			WHY="no $t command (apt-get install iproute2 iptables util-linux)"
			return 1
		}
	done
	for ns in "$NSA" "$NSB"; do
		ip netns add "$ns" 2>/dev/null || {
			WHY="cannot create a network namespace (ip netns add $ns)"
			return 1
		}
		NS_MADE+=("$ns")
	done
	# what the capture needs: the nat table, REDIRECT and the owner match
	ip netns exec "$NSA" iptables-save >/dev/null 2>&1 &&
		ip netns exec "$NSA" iptables -t nat -N SKIFF_PROBE 2>/dev/null &&
		ip netns exec "$NSA" iptables -t nat -A SKIFF_PROBE -p tcp -m owner --uid-owner "$PROXY_UID" \
			-j REDIRECT --to-ports 15001 2>/dev/null || {
		WHY="iptables (nat table, REDIRECT, owner match) does not work in a network namespace"
		return 1
	}
	ip netns exec "$NSA" iptables -t nat -F SKIFF_PROBE
	ip netns exec "$NSA" iptables -t nat -X SKIFF_PROBE
	return 0
}

# Everything is stopped before the namespaces go; then lib.sh's own cleanup.
_netns_cleanup() {
	local rc=$? pid i alive ns
	for pid in "${POD_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for i in $(seq 60); do
		alive=0
		for pid in "${POD_PIDS[@]}"; do
			_t_running "$pid" && alive=1
		done
		[ "$alive" -eq 0 ] && break
		sleep 0.05
	done
	for pid in "${POD_PIDS[@]}"; do
		_t_running "$pid" && kill -KILL "$pid" 2>/dev/null
	done
	for ns in "${NS_MADE[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	(exit "$rc")
	_t_cleanup
}
trap _netns_cleanup EXIT

if ! netns_ready; then
	skip "netns data path" "$WHY"
	summary
	exit 0
fi
HOST_RULES=$(iptables-save 2>/dev/null | grep -v '^#')

# ---------------------------------------------------------------------------------------
# helpers

# as_uid UID CMD...: CMD with that uid/gid and no supplementary groups (no user needed).
as_uid() {
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"
}
# in_pod NS UID CMD...: CMD inside the pod's namespace as UID, bounded to 20 s.
in_pod() {
	local ns=$1 u=$2
	shift 2
	ip netns exec "$ns" setpriv --reuid="$u" --regid="$u" --clear-groups -- timeout 20 "$@"
}
# start_in_pod NS UID LOG CMD...: CMD in the background (cwd $W); sets POD_PID.
start_in_pod() {
	local ns=$1 u=$2 log=$3
	shift 3
	(cd "$W" && exec ip netns exec "$ns" setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@") \
		>"$log" 2>&1 &
	POD_PID=$!
	POD_PIDS+=("$POD_PID")
}

# forget_pid PID: PID was reaped and may be reused: the trap must not signal it.
forget_pid() {
	local i
	for i in "${!POD_PIDS[@]}"; do
		[ "${POD_PIDS[$i]}" = "$1" ] && unset "POD_PIDS[$i]"
	done
	return 0
}

# stats NS: skiff's /stats in that pod (root's traffic to 127.0.0.1 is never captured).
stats() {
	ip netns exec "$1" curl -s --max-time 3 http://127.0.0.1:15000/stats 2>/dev/null
}
# statv TEXT NAME: the value of one counter in a /stats text, or "absent".
statv() {
	printf '%s\n' "$1" | awk -v n="$2: " 'index($0, n) == 1 { v = substr($0, length(n) + 1) }
		END { print (v == "" ? "absent" : v) }'
}
# sumv TEXT NAME...: the sum of some counters, or "absent" when one is missing.
sumv() {
	local t=$1 n v sum=0
	shift
	for n in "$@"; do
		v=$(statv "$t" "$n")
		[[ "$v" =~ ^[0-9]+$ ]] || {
			echo absent
			return
		}
		sum=$((sum + v))
	done
	echo "$sum"
}
# check_ge NAME GOT MIN
check_ge() {
	if [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ]; then
		_t_ok "$1"
		return 0
	fi
	_t_fail "$1" "got $2, want >= $3"
	return 1
}
# delta BEFORE AFTER NAME: how much a counter grew between two /stats texts.
delta() {
	local a b
	a=$(statv "$1" "$3")
	b=$(statv "$2" "$3")
	[[ "$a" =~ ^[0-9]+$ ]] || a=0
	[[ "$b" =~ ^[0-9]+$ ]] || {
		echo absent
		return
	}
	echo $((b - a))
}

# The stats this test reads (Envoy's names: a listener's stat prefix is its address, a
# cluster's is its alt_stat_name, which Istio ends with ';' for its tag regex).
L_OUT=listener.0.0.0.0_15001.downstream_cx_total
L_8080=listener.0.0.0.0_8080.downstream_cx_total
L_IN=listener.0.0.0.0_15006.downstream_cx_total
SVC="outbound|8080||app-b.default.svc.cluster.local"
T_SVC="tcp.$SVC.downstream_cx_total"
C_SVC="cluster.$SVC;.upstream_cx_total"
C_PASS="cluster.PassthroughCluster;.upstream_cx_total"
C_INPASS="cluster.InboundPassthroughCluster;.upstream_cx_total"

# ---------------------------------------------------------------------------------------
# the pods' files: readable by the unprivileged uids

W="$TMP/pods"
mkdir -p "$W"
chmod 711 "$TMP"
chmod 755 "$W"

# The apps. "serve PORT...": one thread per connection; an HTTP request is answered with
# the port and the peer address the server saw; "SINK\n" + bytes is answered with their
# sha256 and count. Each connection is logged as "conn port=P peer=IP". "sink HOST PORT N":
# sends "SINK\n" + N deterministic bytes, checks the reply against its own sha256.
cat >"$W/pods.py" <<'PY'
import hashlib, socket, struct, sys, threading, time

def serve_conn(conn, port):
    peer = conn.getpeername()
    print("conn port=%d peer=%s" % (port, peer[0]), flush=True)
    conn.settimeout(90)
    try:
        head = b""
        while len(head) < 5 and b"\r\n\r\n" not in head:
            d = conn.recv(65536)
            if not d:
                return
            head += d
        if head.startswith(b"SINK\n"):
            h, n = hashlib.sha256(), 0
            rest = head[5:]
            h.update(rest)
            n += len(rest)
            buf = bytearray(1 << 20)
            mv = memoryview(buf)
            while True:
                k = conn.recv_into(buf)
                if k == 0:
                    break
                h.update(mv[:k])
                n += k
            conn.sendall(("%s %d %s\n" % (h.hexdigest(), n, peer[0])).encode())
            print("sink port=%d bytes=%d peer=%s" % (port, n, peer[0]), flush=True)
            return
        while b"\r\n\r\n" not in head and len(head) < 65536:
            d = conn.recv(65536)
            if not d:
                return
            head += d
        body = ("pod-b port %d peer %s\n" % (port, peer[0])).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(body), body))
    except OSError as e:
        print("error port=%d: %s" % (port, e), flush=True)
    finally:
        conn.close()

def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    return s

def accept_loop(s, port):
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve_conn, args=(c, port), daemon=True).start()

def serve(ports):
    socks = [(listen(p), p) for p in ports]
    for s, p in socks:
        threading.Thread(target=accept_loop, args=(s, p), daemon=True).start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)

def sink(host, port, total):
    base = hashlib.shake_256(b"skiff netns").digest(1 << 20)
    h, sent = hashlib.sha256(), 0
    t0 = time.time()
    s = socket.create_connection((host, port), timeout=10)
    s.settimeout(90)
    s.sendall(b"SINK\n")
    i = 0
    while sent < total:
        chunk = (struct.pack(">Q", i) + base[8:])[: total - sent]
        h.update(chunk)
        s.sendall(chunk)
        sent += len(chunk)
        i += 1
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        reply += d
    s.close()
    secs = time.time() - t0
    want = "%s %d" % (h.hexdigest(), sent)
    got = reply.decode(errors="replace").strip()
    print("sent %d bytes in %.2f s (%.0f MiB/s); sha256 %s; server: %s" %
          (sent, secs, sent / secs / (1 << 20), h.hexdigest(), got))
    sys.exit(0 if got.startswith(want + " ") else 1)

if sys.argv[1] == "serve":
    serve([int(p) for p in sys.argv[2:]])
else:
    sink(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
PY
chmod 644 "$W/pods.py"

# A python the app uid can run (a version manager's interpreter under /root may not be).
APP_PY=""
for p in "$PYTHON3" /usr/bin/python3 /usr/local/bin/python3; do
	# (through timeout, as the apps are run: setpriv itself may exec what the uid cannot)
	if [ -x "$p" ] && as_uid "$APP_UID" timeout 10 "$p" -c 'import hashlib, socket, threading' 2>/dev/null; then
		APP_PY=$p
		break
	fi
done
if [ -z "$APP_PY" ]; then
	_t_fail "app python" "no python3 that uid $APP_UID can run"
	summary
	exit 1
fi

# Per-pod bootstraps from the example sidecar: pod-a's 8080 service is pod-b's 8080. Both
# get virtualOutbound's "virtualOutbound-blackhole" chain as istiod pushes it (destination
# port 15001 -> BlackHoleCluster) when the example lacks it: without it, a connection made
# straight to 127.0.0.1:15001 (never captured) would pass through to 15001 again, forever.
POD_JQ='def pod($ip; $app):
		.node.id = "sidecar~\($ip)~\($app).default~default.svc.cluster.local" | .node.cluster = "\($app).default"
		| .admin.address.socket_address = {address: "127.0.0.1", port_value: 15000}
		| (.static_resources.listeners[] | select(.name == "virtualOutbound") | .filter_chains) |=
		  (if any(.[]; .name == "virtualOutbound-blackhole") then . else
		   [{name: "virtualOutbound-blackhole", filter_chain_match: {destination_port: 15001},
		     filters: [{name: "envoy.filters.network.tcp_proxy", typed_config: {
		       "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
		       stat_prefix: "BlackHoleCluster", cluster: "BlackHoleCluster"}}]}] + . end);'
jq --arg a "$A_IP" --arg b "$B_IP" --arg svc "$SVC" "$POD_JQ"' pod($a; "app-a")
	| (.static_resources.clusters[] | select(.name == $svc)
	   | .load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address)
	  = {address: $b, port_value: 8080}' "$BOOT" >"$W/pod-a.json"
jq --arg b "$B_IP" "$POD_JQ"' pod($b; "app-b")' "$BOOT" >"$W/pod-b.json"
chmod 644 "$W/pod-a.json" "$W/pod-b.json"
check "bootstrap readable by uid $PROXY_UID" as_uid "$PROXY_UID" test -r "$W/pod-a.json" -a -x "$SKIFF_BIN"

# The istio-init container's args, exactly as injected (the leading "istio-iptables" word
# and --log_output_level included); Istio's documented defaults when the corpus is absent.
INIT_ARGS=()
if [ -f "$INJ" ]; then
	mapfile -t INIT_ARGS < <(awk '/^ *initContainers:/ { f = 1 } f && /- args:/ { a = 1; next }
		a && /^ *- / { sub(/^ *- /, ""); gsub(/^["'\'']|["'\'']$/, ""); print; next }
		a { exit }' "$INJ" | head -n 40)
fi
if [ "${INIT_ARGS[0]:-}" != istio-iptables ]; then
	skip "injected init args" "no $INJ: using istio-init's usual args"
	INIT_ARGS=(istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d "15090,15021,15020")
fi

# ---------------------------------------------------------------------------------------
# the two pods: lo, one veth end each (eth0), our own addresses

for ns in "$NSA" "$NSB"; do
	ip -n "$ns" link set lo up
done
ip -n "$NSA" link add eth0 type veth peer name eth0 netns "$NSB"
ip -n "$NSA" addr add "$A_IP/24" dev eth0
ip -n "$NSB" addr add "$B_IP/24" dev eth0
ip -n "$NSA" link set eth0 up
ip -n "$NSB" link set eth0 up

# pod-b's app: 8080 (the service), 9090 (no listener of its own anywhere), 15020 (an
# inbound port excluded by -d).
start_in_pod "$NSB" "$APP_UID" "$W/app-b.log" "$APP_PY" -u "$W/pods.py" serve 8080 9090 15020
APP_B_PID=$POD_PID
for i in $(seq 100); do
	grep -q '^ready' "$W/app-b.log" 2>/dev/null && break
	_t_running "$APP_B_PID" || break
	sleep 0.05
done
check "pod-b app: listening" grep -q '^ready' "$W/app-b.log"

# app_curl PORT: pod-a's app (uid 1000) asks pod-b:PORT; sets BODY ("" on failure).
app_curl() {
	BODY=$(in_pod "$NSA" "$APP_UID" curl -s --max-time 5 "http://$B_IP:$1/" 2>/dev/null)
}

# Before any rule: the path works and the server sees pod-a itself (the veth may take a
# moment to come up: retries for 10 s at most).
deadline=$((SECONDS + 10))
while :; do
	BODY=$(in_pod "$NSA" "$APP_UID" curl -s --connect-timeout 1 --max-time 2 "http://$B_IP:8080/" 2>/dev/null)
	[ -n "$BODY" ] || [ "$SECONDS" -ge "$deadline" ] && break
	sleep 0.05
done
check_eq "no capture yet: pod-a reaches pod-b directly" "$BODY" "pod-b port 8080 peer $A_IP"

# ---------------------------------------------------------------------------------------
# istio-init, then the sidecars

for ns in "$NSA" "$NSB"; do
	ip netns exec "$ns" env -i PATH="$PATH" timeout 30 "$IPT" "${INIT_ARGS[@]}" >"$W/ipt.out" 2>&1
	check_eq "istio-init in $ns: exit 0" "$?" 0 || cat "$W/ipt.out"
	check_eq "istio-init in $ns: the four chains" \
		"$(ip netns exec "$ns" iptables-save -t nat | grep -c '^:ISTIO_')" 4
done

start_skiff_pod() { # NS NAME
	start_in_pod "$1" "$PROXY_UID" "$W/skiff-$2.log" "$SKIFF_BIN" -c "$W/$2.json" --concurrency 2 \
		--drain-time-s 1 --drain-strategy immediate --local-address-ip-version v4 --disable-hot-restart
}
wait_pod_skiff() { # NS PID NAME: /stats answers with the workers started (15 s at most)
	local s deadline=$((SECONDS + 15))
	while [ "$SECONDS" -lt "$deadline" ]; do
		s=$(stats "$1")
		case "$s" in *"listener_manager.workers_started: 1"*) return 0 ;; esac
		_t_running "$2" || break
		sleep 0.05
	done
	echo "skiff in $1 is not up; its log:"
	tail -n 20 "$W/skiff-$3.log"
	return 1
}
start_skiff_pod "$NSA" pod-a
SKIFF_A=$POD_PID
start_skiff_pod "$NSB" pod-b
SKIFF_B=$POD_PID
check "skiff in pod-a: up as uid $PROXY_UID" wait_pod_skiff "$NSA" "$SKIFF_A" pod-a
check "skiff in pod-b: up as uid $PROXY_UID" wait_pod_skiff "$NSB" "$SKIFF_B" pod-b
check_eq "skiff in pod-a runs as uid $PROXY_UID" "$(awk '/^Uid:/ { print $2 "," $3 }' /proc/"$SKIFF_A"/status)" \
	"$PROXY_UID,$PROXY_UID"

# The 8080 listener (bind_to_port: false) has no socket: only 15001 can hand it anything.
check_eq "pod-a: skiff listens on 15001 and 15006, nothing on 8080" \
	"$(ip netns exec "$NSA" ss -ltnH 2>/dev/null | awk '{ print $4 }' | grep -E ':(15001|15006|8080)$' | sort -u | tr '\n' ' ')" \
	"0.0.0.0:15001 0.0.0.0:15006 "

SA0=$(stats "$NSA")
SB0=$(stats "$NSB")

# ---------------------------------------------------------------------------------------
# 1-3. the service port: captured by 15001 on A, handed to the 8080 listener, captured by
# 15006 on B, delivered from 127.0.0.6; nothing captured twice

N_SVC=3
ok=0
for i in $(seq "$N_SVC"); do
	app_curl 8080
	[ "$BODY" = "pod-b port 8080 peer 127.0.0.6" ] && ok=$((ok + 1))
	last=$BODY
done
check_eq "service: $N_SVC requests from pod-a's app answered, pod-b's app saw 127.0.0.6" \
	"$ok ($last)" "$N_SVC (pod-b port 8080 peer 127.0.0.6)"
check_eq "service: pod-b's app log shows the connections from 127.0.0.6" \
	"$(grep -c '^conn port=8080 peer=127.0.0.6$' "$W/app-b.log")" "$N_SVC"

SA1=$(stats "$NSA")
SB1=$(stats "$NSB")
check_eq "A: the 8080 listener got the $N_SVC connections (handed off by 15001)" \
	"$(delta "$SA0" "$SA1" "$L_8080")" "$N_SVC"
check_eq "A: tcp.$SVC.downstream_cx_total" "$(delta "$SA0" "$SA1" "$T_SVC")" "$N_SVC"
check_eq "A: cluster $SVC upstream_cx_total" "$(delta "$SA0" "$SA1" "$C_SVC")" "$N_SVC"
check_eq "A: no loop: 15001 kept none of them (skiff's own upstream not recaptured)" \
	"$(delta "$SA0" "$SA1" "$L_OUT")" 0
check_eq "A: nothing reached A's inbound" "$(delta "$SA0" "$SA1" "$L_IN")" 0
check_eq "B: 15006 captured exactly the $N_SVC connections" "$(delta "$SB0" "$SB1" "$L_IN")" "$N_SVC"
check_eq "B: tcp.inbound|8080||.downstream_cx_total" \
	"$(delta "$SB0" "$SB1" "tcp.inbound|8080||.downstream_cx_total")" "$N_SVC"
check_eq "B: InboundPassthroughCluster upstream_cx_total" "$(delta "$SB0" "$SB1" "$C_INPASS")" "$N_SVC"
check_eq "B: no loop: the upstream from 127.0.0.6 never reached 15001" \
	"$(delta "$SB0" "$SB1" "$L_OUT")" 0
check_eq "A: no failed upstream connects" \
	"$(statv "$SA1" "cluster.$SVC;.upstream_cx_connect_fail")" 0
check_eq "B: no failed upstream connects" "$(statv "$SB1" "cluster.InboundPassthroughCluster;.upstream_cx_connect_fail")" 0

# ---------------------------------------------------------------------------------------
# 4. a port without a listener of its own: virtualOutbound's PassthroughCluster

app_curl 9090
check_eq "passthrough: pod-a's app reaches pod-b:9090, which saw 127.0.0.6" "$BODY" "pod-b port 9090 peer 127.0.0.6"
SA2=$(stats "$NSA")
SB2=$(stats "$NSB")
check_eq "A: 15001 kept the 9090 connection" "$(delta "$SA1" "$SA2" "$L_OUT")" 1
check_eq "A: tcp.PassthroughCluster.downstream_cx_total" \
	"$(delta "$SA1" "$SA2" tcp.PassthroughCluster.downstream_cx_total)" 1
check_eq "A: PassthroughCluster upstream_cx_total" "$(delta "$SA1" "$SA2" "$C_PASS")" 1
check_eq "A: the 8080 listener not involved" "$(delta "$SA1" "$SA2" "$L_8080")" 0
check_eq "B: 15006 captured it (the catch-all chain)" "$(delta "$SB1" "$SB2" "$L_IN")" 1
check_eq "B: tcp.InboundPassthroughCluster.downstream_cx_total" \
	"$(delta "$SB1" "$SB2" tcp.InboundPassthroughCluster.downstream_cx_total)" 1
check_eq "B: InboundPassthroughCluster upstream_cx_total" "$(delta "$SB1" "$SB2" "$C_INPASS")" 1

# ---------------------------------------------------------------------------------------
# 5. a large transfer through both sidecars, intact

t0=$(date +%s%N)
if [ "$ok" -eq "$N_SVC" ]; then
	# (in the background, so that a signal to this script is handled at once)
	start_in_pod "$NSA" "$APP_UID" "$W/sink.out" timeout "$BIG_TIMEOUT" "$APP_PY" "$W/pods.py" sink "$B_IP" 8080 "$BIG"
	wait "$POD_PID"
	rc=$?
	forget_pid "$POD_PID"
	OUT=$(cat "$W/sink.out")
else
	rc=1 OUT="not attempted: the service path failed above"
fi
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# $BIG bytes pod-a -> pod-b through both sidecars: ${ms} ms (exit $rc): $OUT"
check_eq "transfer: $((BIG >> 20)) MiB arrive intact (sha256 and count match, within ${BIG_TIMEOUT} s)" \
	"$rc" 0 || echo "# $OUT"
check_contains "transfer: the sink saw 127.0.0.6" "$OUT" " 127.0.0.6"
SA3=$(stats "$NSA")
SB3=$(stats "$NSB")
check_ge "A: $SVC upstream tx bytes" "$(delta "$SA2" "$SA3" "cluster.$SVC;.upstream_cx_tx_bytes_total")" "$BIG"
check_ge "B: InboundPassthroughCluster upstream tx bytes" \
	"$(delta "$SB2" "$SB3" "cluster.InboundPassthroughCluster;.upstream_cx_tx_bytes_total")" "$BIG"
check_eq "transfer: one connection each side" \
	"$(delta "$SA2" "$SA3" "$L_8080") $(delta "$SB2" "$SB3" "$L_IN")" "1 1"

# ---------------------------------------------------------------------------------------
# 6. an excluded inbound port (-d 15020): not captured on B (A still captures outbound)

app_curl 15020
check_eq "excluded inbound port: pod-b:15020 saw pod-a itself, not 127.0.0.6" "$BODY" "pod-b port 15020 peer $A_IP"
SA4=$(stats "$NSA")
SB4=$(stats "$NSB")
check_eq "excluded inbound port: B's 15006 unchanged" "$(delta "$SB3" "$SB4" "$L_IN")" 0
check_eq "excluded inbound port: B's InboundPassthroughCluster unchanged" "$(delta "$SB3" "$SB4" "$C_INPASS")" 0
check_eq "excluded inbound port: A's passthrough took it" "$(delta "$SA3" "$SA4" "$C_PASS")" 1

# All in all: each pod captured exactly the connections its app made or received.
N_A=$((N_SVC + 1 + 1 + 1))
check_eq "A: 15001 + 8080 listeners = the $N_A connections pod-a's app made" \
	"$(sumv "$SA4" "$L_OUT" "$L_8080")" "$N_A"
check_eq "B: 15006 = the $((N_A - 1)) connections to captured ports" "$(statv "$SB4" "$L_IN")" "$((N_A - 1))"
check_eq "B: pod-b's app saw 127.0.0.6 exactly that often" \
	"$(grep -c '^conn port=[0-9]* peer=127.0.0.6$' "$W/app-b.log")" "$((N_A - 1))"
check_eq "A: no listener_filter errors, no unmatched chains" \
	"$(printf '%s\n' "$SA4" | grep -E '\.(no_filter_chain_match|downstream_listener_filter_error|downstream_pre_cx_timeout): [1-9]' | head -n 3)" ""
check_eq "B: no listener_filter errors, no unmatched chains" \
	"$(printf '%s\n' "$SB4" | grep -E '\.(no_filter_chain_match|downstream_listener_filter_error|downstream_pre_cx_timeout): [1-9]' | head -n 3)" ""

# ---------------------------------------------------------------------------------------
# 3b. the blackholes, at port 15006 of pod-b. From pod-a's app, 15001 hands the
# connection to the listener owning 0.0.0.0:15006 - pod-a's own virtualInbound, as Envoy's
# wildcard lookup does - whose blackhole chain closes it: nothing leaves pod-a. From uid
# 1337 (never captured on A), pod-b captures it once and blackholes it: without that chain
# its passthrough would connect to 15006 again, from 127.0.0.6, forever.

n_app=$(grep -c '^conn ' "$W/app-b.log")
BODY=$(in_pod "$NSA" "$APP_UID" curl -s --max-time 5 "http://$B_IP:15006/" 2>/dev/null)
check_eq "pod-b:15006 from pod-a's app: closed without an answer" "$BODY" ""
SA5=$(stats "$NSA")
SB5=$(stats "$NSB")
check_eq "A: handed to its own virtualInbound, blackholed there" \
	"$(delta "$SA4" "$SA5" "$L_IN") $(delta "$SA4" "$SA5" tcp.BlackHoleCluster.downstream_cx_total)" "1 1"
check_eq "A: nothing went out for it" "$(delta "$SA4" "$SA5" "$C_PASS") $(delta "$SA4" "$SA5" "$L_OUT")" "0 0"
check_eq "B: nothing arrived" "$(delta "$SB4" "$SB5" "$L_IN")" 0
BODY=$(in_pod "$NSA" "$PROXY_UID" curl -s --max-time 5 "http://$B_IP:15006/" 2>/dev/null)
check_eq "pod-b:15006 from uid $PROXY_UID on pod-a: closed without an answer" "$BODY" ""
SA6=$(stats "$NSA")
SB6=$(stats "$NSB")
check_eq "A: uid $PROXY_UID is not captured" "$(delta "$SA5" "$SA6" "$L_OUT") $(delta "$SA5" "$SA6" "$L_IN")" "0 0"
check_eq "B: 15006 captured it once (no loop)" "$(delta "$SB5" "$SB6" "$L_IN")" 1
check_eq "B: it took the blackhole chain" "$(delta "$SB5" "$SB6" tcp.BlackHoleCluster.downstream_cx_total)" 1
check_eq "B: the blackhole has no host (upstream_cx_none_healthy)" \
	"$(delta "$SB5" "$SB6" "cluster.BlackHoleCluster;.upstream_cx_none_healthy")" 1
check_eq "B: nothing else connected anywhere" "$(delta "$SB5" "$SB6" "$C_INPASS")" 0
check_eq "pod-b's app saw neither" "$(grep -c '^conn ' "$W/app-b.log")" "$n_app"

# And straight at 127.0.0.1:15001 from pod-a's app (loopback: never captured): the
# virtualOutbound-blackhole chain closes it instead of passing it through to 15001 again.
BODY=$(in_pod "$NSA" "$APP_UID" curl -s --max-time 5 "http://127.0.0.1:15001/" 2>/dev/null)
check_eq "127.0.0.1:15001 from pod-a's app: closed without an answer" "$BODY" ""
SA7=$(stats "$NSA")
check_eq "A: 15001 took it once (no loop), on the blackhole chain" \
	"$(delta "$SA6" "$SA7" "$L_OUT") $(delta "$SA6" "$SA7" tcp.BlackHoleCluster.downstream_cx_total)" "1 1"
check_eq "A: the passthrough did not connect anywhere" "$(delta "$SA6" "$SA7" "$C_PASS")" 0
SAL=$SA7
SBL=$SB6

# ---------------------------------------------------------------------------------------
# 7. cleanup: the rules go, and the path is direct again

for ns in "$NSA" "$NSB"; do
	ip netns exec "$ns" env -i PATH="$PATH" timeout 30 "$IPT" "${INIT_ARGS[@]}" --cleanup-only >"$W/ipt.out" 2>&1
	check_eq "cleanup-only in $ns: exit 0" "$?" 0 || cat "$W/ipt.out"
	check_not_contains "cleanup-only in $ns: no ISTIO_ chain or rule left" \
		"$(ip netns exec "$ns" iptables-save)" "ISTIO_"
done
app_curl 8080
check_eq "after cleanup: pod-a reaches pod-b directly again" "$BODY" "pod-b port 8080 peer $A_IP"
SA5=$(stats "$NSA")
SB5=$(stats "$NSB")
check_eq "after cleanup: neither sidecar saw it" \
	"$(delta "$SAL" "$SA5" "$L_OUT") $(delta "$SAL" "$SA5" "$L_8080") $(delta "$SBL" "$SB5" "$L_IN")" "0 0 0"

# ---------------------------------------------------------------------------------------
# the sidecars stop cleanly (and, in the sanitized build, without a report)

for p in "pod-a:$SKIFF_A" "pod-b:$SKIFF_B"; do
	name=${p%%:*} pid=${p#*:}
	kill -TERM "$pid" 2>/dev/null
	if wait_exit "$pid" 10; then
		forget_pid "$pid"
		check_eq "skiff in $name: exit 0 on SIGTERM" "$EXIT_CODE" 0
	else
		_t_fail "skiff in $name: exits on SIGTERM" "still running after 10 s"
	fi
	check_eq "skiff in $name: no sanitizer report" \
		"$(grep -E 'Sanitizer|runtime error' "$W/skiff-$name.log" | head -n 3)" ""
done

check_eq "host rules untouched" "$(iptables-save 2>/dev/null | grep -v '^#')" "$HOST_RULES"

summary
