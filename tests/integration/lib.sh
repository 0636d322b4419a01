# Shared helpers of skiff's shell tests (sourced by tests/integration/*_test.sh and
# tests/conformance/*_test.sh).
#
# Environment: SKIFF_BIN (the skiff binary), SKIFF_SRC (project root), SKIFF_CONFORMANCE
# (Istio corpus). Each script ends with `summary`, which prints "N passed, N failed,
# N skipped" and returns non-zero when something failed.
#
# Everything here talks to 127.0.0.1 or unix sockets only, and every wait is bounded.

set -u

: "${SKIFF_BIN:?set SKIFF_BIN to the skiff binary}"
SKIFF_SRC="${SKIFF_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
SKIFF_CONFORMANCE="${SKIFF_CONFORMANCE:-$SKIFF_SRC/../shared/conformance}"
case "$SKIFF_BIN" in /*) ;; *) SKIFF_BIN="$PWD/$SKIFF_BIN" ;; esac

_T_PASS=0
_T_FAIL=0
_T_SKIP=0
_T_PIDS=()
_T_PORTS=" "
_T_NSTART=0

TMP=$(mktemp -d "${TMPDIR:-/tmp}/skiff-test.XXXXXX") || {
	echo "cannot create a temporary directory" >&2
	exit 1
}

# ---------------------------------------------------------------------------------------
# cleanup: every process started with start_skiff is stopped (TERM, then KILL after ~2 s)

_t_cleanup() {
	local rc=$? pid i alive
	for pid in "${_T_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for i in $(seq 40); do
		alive=0
		for pid in "${_T_PIDS[@]}"; do
			_t_running "$pid" && alive=1
		done
		[ "$alive" -eq 0 ] && break
		sleep 0.05
	done
	for pid in "${_T_PIDS[@]}"; do
		_t_running "$pid" && kill -KILL "$pid" 2>/dev/null
	done
	rm -rf "$TMP"
	exit "$rc"
}
trap _t_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# assertions

_t_ok() {
	_T_PASS=$((_T_PASS + 1))
	echo "ok $1"
}

# _t_fail NAME DETAILS: details are shortened to a few hundred characters.
_t_fail() {
	local d=$2
	[ "${#d}" -gt 600 ] && d="${d:0:600}...(${#d} chars)"
	_T_FAIL=$((_T_FAIL + 1))
	echo "FAIL $1: $d"
}

# check NAME CMD...: passes when CMD exits 0 (its output is shown on failure).
check() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		_t_ok "$name"
	else
		_t_fail "$name" "'$*' exited $rc: $out"
	fi
	return "$rc"
}

# check_not NAME CMD...: passes when CMD exits non-zero.
check_not() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -ne 0 ]; then
		_t_ok "$name"
		return 0
	fi
	_t_fail "$name" "'$*' succeeded: $out"
	return 1
}

# check_eq NAME GOT WANT
check_eq() {
	if [ "$2" == "$3" ]; then
		_t_ok "$1"
		return 0
	fi
	_t_fail "$1" "got $(printf %q "$2"), want $(printf %q "$3")"
	return 1
}

# check_contains NAME HAYSTACK NEEDLE (fixed string)
check_contains() {
	case "$2" in
	*"$3"*)
		_t_ok "$1"
		return 0
		;;
	esac
	_t_fail "$1" "$(printf %q "$3") not found in: $2"
	return 1
}

# check_not_contains NAME HAYSTACK NEEDLE (fixed string)
check_not_contains() {
	case "$2" in
	*"$3"*)
		_t_fail "$1" "$(printf %q "$3") unexpectedly found in: $2"
		return 1
		;;
	esac
	_t_ok "$1"
	return 0
}

# check_match NAME STRING ERE: some line of STRING matches the extended regex.
check_match() {
	if printf '%s\n' "$2" | grep -qE -- "$3"; then
		_t_ok "$1"
		return 0
	fi
	_t_fail "$1" "no line matches /$3/ in: $2"
	return 1
}

# check_all_lines NAME STRING ERE: STRING has at least one line and every line matches.
check_all_lines() {
	local bad
	if [ -z "$2" ]; then
		_t_fail "$1" "empty output"
		return 1
	fi
	bad=$(printf '%s\n' "$2" | grep -vE -- "$3" | head -n 3)
	if [ -z "$bad" ]; then
		_t_ok "$1"
		return 0
	fi
	_t_fail "$1" "lines not matching /$3/: $bad"
	return 1
}

# check_json NAME JSON JQ-EXPR: JSON parses and the jq expression is true.
check_json() {
	local out
	if out=$(printf '%s' "$2" | jq -e "$3" 2>&1) && [ "$out" != false ] && [ "$out" != null ]; then
		_t_ok "$1"
		return 0
	fi
	_t_fail "$1" "jq '$3' -> $out; document: $2"
	return 1
}

skip() {
	_T_SKIP=$((_T_SKIP + 1))
	echo "skip $1: $2"
}

summary() {
	echo "$_T_PASS passed, $_T_FAIL failed, $_T_SKIP skipped"
	[ "$_T_FAIL" -eq 0 ]
}

# The interpreter itself: a version manager's shim (pyenv) costs ~0.5 s per start.
PYTHON3=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || PYTHON3=python3

# require_tools CMD...: the tests need these (jq, curl, python3); a missing one is a failure.
require_tools() {
	local t missing=0
	for t in "$@"; do
		if ! command -v "$t" >/dev/null 2>&1; then
			_t_fail "tool $t" "not installed"
			missing=1
		fi
	done
	return "$missing"
}

# ---------------------------------------------------------------------------------------
# ports and processes

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on, never the same one twice
# in a script.
free_port() {
	local i p
	for i in $(seq 50); do
		p=$("$PYTHON3" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null) || p=$((20000 + RANDOM % 30000))
		case "$_T_PORTS" in *" $p "*) continue ;; esac
		# Nothing may answer there either (a bash /dev/tcp connect, bounded by timeout).
		if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null; then
			continue
		fi
		_T_PORTS="$_T_PORTS$p "
		echo "$p"
		return 0
	done
	echo "free_port: no free port found" >&2
	return 1
}

_t_running() { # PID: the process exists and is not a zombie
	local st
	kill -0 "$1" 2>/dev/null || return 1
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$st" != Z ] && [ "$st" != X ]
}

# start_skiff ARGS...: starts $SKIFF_BIN ARGS in the background (cwd $TMP), logs (stdout and
# stderr) to $SKIFF_LOG; sets SKIFF_PID. Call it directly, not in $(...).
start_skiff() {
	_T_NSTART=$((_T_NSTART + 1))
	SKIFF_LOG="$TMP/skiff.$_T_NSTART.log"
	(cd "$TMP" && exec "$SKIFF_BIN" "$@") >"$SKIFF_LOG" 2>&1 &
	SKIFF_PID=$!
	_T_PIDS+=("$SKIFF_PID")
}

# wait_admin PORT [PID]: polls http://127.0.0.1:PORT/ready until anything answers (at most
# ~10 s, 0.05 s apart); fails at once if PID (default $SKIFF_PID) has exited.
wait_admin() {
	local port=$1 pid=${2:-${SKIFF_PID:-}} i code deadline=$((SECONDS + 11))
	for i in $(seq 200); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/ready" 2>/dev/null)
		[ -n "$code" ] && [ "$code" != 000 ] && return 0
		if [ -n "$pid" ] && ! _t_running "$pid"; then
			echo "wait_admin: skiff (pid $pid) exited; log:" >&2
			tail -n 20 "${SKIFF_LOG:-/dev/null}" >&2
			return 1
		fi
		[ "$SECONDS" -ge "$deadline" ] && break
		sleep 0.05
	done
	echo "wait_admin: nothing answers on 127.0.0.1:$port" >&2
	return 1
}

# wait_live PORT [SECONDS]: polls /ready until it says LIVE (default 20 s); 1 otherwise.
wait_live() {
	local i
	for i in $(seq $((${2:-20} * 20))); do
		[ "$(curl -s --max-time 1 "http://127.0.0.1:$1/ready" 2>/dev/null)" = LIVE ] && return 0
		sleep 0.05
	done
	return 1
}

# wait_admin_unix PATH [PID]: as wait_admin, for an admin on a unix socket.
wait_admin_unix() {
	local path=$1 pid=${2:-${SKIFF_PID:-}} i code deadline=$((SECONDS + 11))
	for i in $(seq 200); do
		if [ -S "$path" ]; then
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 --unix-socket "$path" \
				http://localhost/ready 2>/dev/null)
			[ -n "$code" ] && [ "$code" != 000 ] && return 0
		fi
		if [ -n "$pid" ] && ! _t_running "$pid"; then
			echo "wait_admin_unix: skiff (pid $pid) exited" >&2
			return 1
		fi
		[ "$SECONDS" -ge "$deadline" ] && break
		sleep 0.05
	done
	echo "wait_admin_unix: nothing answers on $path" >&2
	return 1
}

# wait_exit PID SECONDS: waits (bounded) for PID, a child started by start_skiff, to exit;
# sets EXIT_CODE to its status and returns 0, or returns 1 if it is still running.
wait_exit() {
	local pid=$1 secs=$2 i n
	n=$(awk -v s="$secs" 'BEGIN { print int(s / 0.05) + 1 }')
	EXIT_CODE=
	for i in $(seq "$n"); do
		_t_running "$pid" || break
		sleep 0.05
	done
	_t_running "$pid" && return 1
	wait "$pid" 2>/dev/null
	EXIT_CODE=$?
	return 0
}

# stop_skiff [PID]: SIGTERM and a bounded wait (the trap kills leftovers anyway).
stop_skiff() {
	local pid=${1:-$SKIFF_PID}
	kill -TERM "$pid" 2>/dev/null
	wait_exit "$pid" 3 || kill -KILL "$pid" 2>/dev/null
}

# ---------------------------------------------------------------------------------------
# HTTP

# req [CURL-ARGS...] URL: one request with curl; sets CODE (000 when nothing answered) and
# BODY (trailing newlines kept). 5 s at most.
req() {
	local f="$TMP/body.$$"
	CODE=$(curl -s -g --max-time 5 -o "$f" -w '%{http_code}' "$@" 2>/dev/null)
	[ -n "$CODE" ] || CODE=000
	BODY=$(
		cat "$f" 2>/dev/null
		printf x
	)
	BODY=${BODY%x}
	rm -f "$f"
}

# http_exchange PORT: sends stdin (one or more raw HTTP/1.1 requests without bodies) in one
# write to 127.0.0.1:PORT and parses the responses, one output line each:
#   <status> <body as a JSON string>
# then "CLOSED" if the server closed the connection, or "OPEN" if it was still open after
# ~3 s of silence. HEAD responses are parsed without a body. Unparsable input is "GARBAGE <n>".
http_exchange() {
	"$PYTHON3" -c "$_T_HTTP_EXCHANGE_PY" "$1"
}
_T_HTTP_EXCHANGE_PY=$(
	cat <<'PY'
import json, socket, sys, time
port = int(sys.argv[1])
data = sys.stdin.buffer.read()
methods = [blk.split(b" ", 1)[0] for blk in data.split(b"\r\n\r\n")[:-1]]
s = socket.create_connection(("127.0.0.1", port), timeout=3)
s.sendall(data)
buf, closed, deadline = b"", False, time.time() + 8
while time.time() < deadline:
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        break
    except ConnectionResetError:
        closed = True
        break
    if not chunk:
        closed = True
        break
    buf += chunk
s.close()
out, i = [], 0
while buf:
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        out.append("GARBAGE %d" % len(buf))
        break
    head = buf[:end].decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        out.append("GARBAGE %d" % len(buf))
        break
    length = 0
    for h in head[1:]:
        k, _, v = h.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    method = methods[i] if i < len(methods) else b"GET"
    if method == b"HEAD":
        length = 0
    body = buf[end + 4:end + 4 + length]
    out.append("%s %s" % (parts[1], json.dumps(body.decode("utf-8", "replace"))))
    buf = buf[end + 4 + length:]
    i += 1
out.append("CLOSED" if closed else "OPEN")
print("\n".join(out))
PY
)

# ---- shared by the data-plane tests (they set PYTHON3 and ADMIN) ----
# ports VAR...: distinct free loopback ports, never handed out twice in one script.
# stat NAME: a stat's value from skiff's admin ($ADMIN), "missing" when absent.
# wait_stat NAME WANT: polls (bounded: 60 x 50 ms) until NAME equals WANT; prints the value.
# check_stat NAME WANT, check_range WHAT VALUE LO HI: assertions built on them.
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
	[ "${#got[@]}" -eq "$#" ] || return 1
	i=0
	for v in "$@"; do
		_T_PORTS="$_T_PORTS${got[i]} "
		printf -v "$v" '%s' "${got[i]}"
		i=$((i + 1))
	done
}
stat() {
	curl -s --max-time 3 "http://127.0.0.1:$ADMIN/stats" |
		awk -F': ' -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print "missing" }'
}
wait_stat() {
	local v i
	for i in $(seq 60); do
		v=$(stat "$1")
		[ "$v" == "$2" ] && break
		sleep 0.05
	done
	echo "$v"
}
check_stat() { check_eq "stat $1 == $2" "$(wait_stat "$1" "$2")" "$2"; }
# wait_line FILE ERE [SECONDS]: until a line of FILE matches (default 5 s, 0.05 s apart).
wait_line() {
	local i
	for i in $(seq $((${3:-5} * 20))); do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
check_range() {
	if awk -v v="$2" -v lo="$3" -v hi="$4" 'BEGIN { exit !(v != "" && v + 0 == v && v >= lo && v <= hi) }'; then
		_t_ok "$1"
	else
		_t_fail "$1" "$(printf %q "$2") not in [$3, $4]"
	fi
}

# ---------------------------------------------------------------------------------------
# SDS in Istio's shape (the TLS tests)

# sds_ref NAME [TIMEOUT]: an SdsSecretConfig over the `sds-grpc` cluster, as istiod writes it.
sds_ref() {
	echo "{\"name\":\"$1\",\"sds_config\":{\"api_config_source\":{\"api_type\":\"GRPC\",
  \"grpc_services\":[{\"envoy_grpc\":{\"cluster_name\":\"sds-grpc\"}}],
  \"set_node_on_first_message_only\":true,\"transport_api_version\":\"V3\"},
  \"initial_fetch_timeout\":\"${2:-0s}\",\"resource_api_version\":\"V3\"}}"
}
# sds_grpc_cluster SOCKET: the bootstrap's `sds-grpc` cluster (HTTP/2 to a unix socket).
sds_grpc_cluster() {
	echo "{\"name\":\"sds-grpc\",\"type\":\"STATIC\",\"connect_timeout\":\"1s\",
  \"load_assignment\":{\"cluster_name\":\"sds-grpc\",\"endpoints\":[{\"lb_endpoints\":[
    {\"endpoint\":{\"address\":{\"pipe\":{\"path\":\"$1\"}}}}]}]},
  \"typed_extension_protocol_options\":{\"envoy.extensions.upstreams.http.v3.HttpProtocolOptions\":{
    \"@type\":\"type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\",
    \"explicit_http_config\":{\"http2_protocol_options\":{}}}}}"
}
# sds_secrets FILE CA [CHAIN KEY]: pilot-agent's secrets as it sends them (inline bytes):
# ROOTCA, and `default` when CHAIN and KEY are given; FILE is replaced atomically.
sds_secrets() {
	local t=type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
	if [ -n "${3:-}" ]; then
		jq -n --rawfile ca "$2" --rawfile chain "$3" --rawfile key "$4" --arg t "$t" '[
			{"@type": $t, "name": "ROOTCA", "validation_context": {"trusted_ca": {"inline_bytes": ($ca | @base64)}}},
			{"@type": $t, "name": "default", "tls_certificate": {
				"certificate_chain": {"inline_bytes": ($chain | @base64)},
				"private_key": {"inline_bytes": ($key | @base64)}}}]'
	else
		jq -n --rawfile ca "$2" --arg t "$t" '[
			{"@type": $t, "name": "ROOTCA", "validation_context": {"trusted_ca": {"inline_bytes": ($ca | @base64)}}}]'
	fi >"$1.tmp" && mv "$1.tmp" "$1"
}
