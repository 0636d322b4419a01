#!/usr/bin/env bash
# Upgrades through the HTTP connection manager (upgrade_configs): a websocket handshake
# forwarded to a real websocket echo server, frames both ways through the tunnel, the
# client closing its side and the upstream closing the tunnel; an upgrade type the HCM does
# not list and a route that disables websocket answer 403 (downstream_rq_ws_on_non_ws_route);
# an upstream that refuses the upgrade (plain 200) has its answer forwarded and the
# connection closed; Envoy's upgrade stats.
. "$(dirname "$0")/lib.sh"

require_tools python3 curl || {
	summary
	exit 1
}
[ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3

# upstream: a websocket echo server (RFC 6455 handshake, unmasked echo of each frame's
# payload, close on a close frame); /refuse answers a plain 200 instead of 101.
cat >"$TMP/ws_up.py" <<'PY'
import base64, hashlib, os, socket, sys, threading, time
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b

def serve(c, rec):
    c.settimeout(10)
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(4096)
        if not d:
            return
        head += d
    lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    hdrs = {l.split(b":", 1)[0].strip().lower(): l.split(b":", 1)[1].strip() for l in lines[1:]}
    with open(rec, "a") as f:
        f.write("%s upgrade=%s connection=%s\n" % (lines[0].decode(), hdrs.get(b"upgrade", b"").decode(),
                                                   hdrs.get(b"connection", b"").decode()))
    if b"/refuse" in lines[0]:
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nrefused")
        time.sleep(0.5)
        return
    acc = base64.b64encode(hashlib.sha1(hdrs[b"sec-websocket-key"] + GUID).digest())
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Accept: " + acc + b"\r\n\r\n")
    while True:
        try:
            h = recv_exact(c, 2)
        except (EOFError, OSError):
            return
        op, ln = h[0] & 15, h[1] & 127
        if ln == 126:
            ln = int.from_bytes(recv_exact(c, 2), "big")
        elif ln == 127:
            ln = int.from_bytes(recv_exact(c, 8), "big")
        mask = recv_exact(c, 4) if h[1] & 128 else b"\0\0\0\0"
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(recv_exact(c, ln)))
        if op == 8:
            c.sendall(b"\x88\x00")
            c.close()
            return
        hdr = bytes([0x80 | op]) + (bytes([ln]) if ln < 126 else bytes([126]) + ln.to_bytes(2, "big"))
        c.sendall(hdr + data)

def main():
    port, ready, rec = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    s.settimeout(0.5)
    open(ready, "w").close()
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(c, rec), daemon=True).start()
main()
PY

# client: handshake on PATH with Upgrade: UPG, then (after a 101) sends N text frames and
# checks each echo, then a close frame; prints the status line, the echo count, and how
# the connection ended.
cat >"$TMP/ws_client.py" <<'PY'
import base64, os, socket, sys, time
port, path, upg, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
early = len(sys.argv) > 5 and sys.argv[5] == "early"
s = socket.create_connection(("127.0.0.1", port), timeout=5)
key = base64.b64encode(os.urandom(16))
req = (b"GET %s HTTP/1.1\r\nHost: ws.test\r\nUpgrade: %s\r\nConnection: Upgrade\r\n"
       b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path.encode(), upg.encode(), key))

def frame(op, data):
    mask = os.urandom(4)
    ln = len(data)
    hdr = bytes([0x80 | op]) + (bytes([0x80 | ln]) if ln < 126 else bytes([0x80 | 126]) + ln.to_bytes(2, "big"))
    return hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))

s.sendall(req + (frame(1, b"early bird") if early else b""))
buf = b""
deadline = time.time() + 5
while b"\r\n\r\n" not in buf and time.time() < deadline:
    d = s.recv(4096)
    if not d:
        break
    buf += d
head, _, rest = buf.partition(b"\r\n\r\n")
status = head.split(b"\r\n", 1)[0].decode("latin-1") if head else "NOTHING"
print(status)
if not status.startswith("HTTP/1.1 101"):
    while time.time() < deadline:
        d = s.recv(4096)
        if not d:
            break
        rest += d
    print("body=" + rest.decode("latin-1"))
    sys.exit(0)
print("accept=" + ("yes" if b"sec-websocket-accept" in head.lower() else "no"))
got = 0
def read_frame():
    global rest
    while len(rest) < 2:
        d = s.recv(65536)
        if not d:
            raise EOFError
        rest += d
    ln = rest[1] & 127
    off = 2
    if ln == 126:
        while len(rest) < 4:
            rest += s.recv(65536)
        ln, off = int.from_bytes(rest[2:4], "big"), 4
    while len(rest) < off + ln:
        d = s.recv(65536)
        if not d:
            raise EOFError
        rest += d
    op, data = rest[0] & 15, rest[off:off + ln]
    rest = rest[off + ln:]
    return op, data
if early:
    op, data = read_frame()
    got += data == b"early bird"
for i in range(n):
    msg = (b"message %d " % i) * (1 + i % 50)
    s.sendall(frame(1, msg))
    op, data = read_frame()
    got += data == msg
print("echoed=%d" % got)
s.sendall(frame(8, b""))
try:
    op, data = read_frame()
    print("close_op=%d" % op)
    print("eof=" + ("yes" if s.recv(10) == b"" else "no"))
except EOFError:
    print("close_op=none")
PY

ports ADMIN LP UP || exit 1
"$PYTHON3" "$TMP/ws_up.py" "$UP" "$TMP/up.ready" "$TMP/rec" >"$TMP/up.log" 2>&1 &
WS_PID=$!
trap 'kill $WS_PID 2>/dev/null; _t_cleanup' EXIT
for i in $(seq 100); do [ -e "$TMP/up.ready" ] && break; sleep 0.05; done

cat >"$TMP/ws.json" <<EOF
{"node": {"id": "ws-test", "cluster": "t"},
 "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $ADMIN}}},
 "static_resources": {
  "clusters": [{"name": "ws", "type": "STATIC", "connect_timeout": "1s",
    "load_assignment": {"cluster_name": "ws", "endpoints": [{"lb_endpoints": [
      {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": $UP}}}}]}]}}],
  "listeners": [{"name": "ws", "address": {"socket_address": {"address": "127.0.0.1", "port_value": $LP}},
    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      "stat_prefix": "wsin",
      "upgrade_configs": [{"upgrade_type": "websocket"}],
      "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
      "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
        {"match": {"prefix": "/nows"}, "route": {"cluster": "ws", "upgrade_configs": [
          {"upgrade_type": "websocket", "enabled": false}]}},
        {"match": {"prefix": "/"}, "route": {"cluster": "ws", "timeout": "1s"}}]}]}}}]}]}]}}
EOF
start_skiff -c "$TMP/ws.json" --concurrency 1
wait_admin "$ADMIN" || exit 1

out=$("$PYTHON3" "$TMP/ws_client.py" "$LP" /chat websocket 40)
check_contains "websocket handshake answered 101" "$out" "HTTP/1.1 101 Switching Protocols"
check_contains "Sec-WebSocket-Accept reaches the client" "$out" "accept=yes"
check_contains "40 frames echoed through the tunnel" "$out" "echoed=40"
check_contains "the close frame is answered" "$out" "close_op=8"
check_contains "the upstream's close ends the downstream connection" "$out" "eof=yes"
check_contains "the upstream saw the upgrade headers" "$(cat "$TMP/rec")" \
	"GET /chat HTTP/1.1 upgrade=websocket connection=upgrade"
check_stat http.wsin.downstream_cx_upgrades_total 1
check_stat http.wsin.downstream_cx_upgrades_active 0

# the tunnel outlives the route timeout (1 s): frames after 1.5 s still flow
out=$("$PYTHON3" - "$LP" <<'PY'
import base64, os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /slowtalk HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)) + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(4096)
time.sleep(1.5)
s.sendall(b"\x81\x82\0\0\0\0hi")
buf = buf.split(b"\r\n\r\n", 1)[1]
while len(buf) < 4:
    d = s.recv(100)
    if not d:
        break
    buf += d
print("late=" + buf[2:4].decode("latin-1"))
PY
)
check_eq "a frame after the route timeout still echoes" "$out" "late=hi"

# frames the client sends right behind its handshake wait for the 101, then go through
out=$("$PYTHON3" "$TMP/ws_client.py" "$LP" /early websocket 3 early)
check_contains "an early frame is held until the 101, then echoed" "$out" "echoed=4"

out=$("$PYTHON3" "$TMP/ws_client.py" "$LP" /nows websocket 1)
check_contains "a route that disables websocket: 403" "$out" "HTTP/1.1 403 Forbidden"
out=$("$PYTHON3" "$TMP/ws_client.py" "$LP" /chat h2c 1)
check_contains "an upgrade type the HCM does not list: 403" "$out" "HTTP/1.1 403 Forbidden"
check_stat http.wsin.downstream_rq_ws_on_non_ws_route 2
check_eq "refused upgrades never reached the upstream" "$(grep -c -e /nows -e 'upgrade=h2c' "$TMP/rec")" 0

out=$("$PYTHON3" "$TMP/ws_client.py" "$LP" /refuse websocket 1)
check_contains "an upstream refusing the upgrade: its answer is forwarded" "$out" "HTTP/1.1 200 OK"
check_contains "... with its body" "$out" "body=refused"
check_stat http.wsin.downstream_cx_upgrades_total 4

# plain HTTP on the same listener still works and keeps the connection
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$LP/refuse")
check_eq "plain requests pass on the websocket-enabled HCM" "$code" 200

summary
