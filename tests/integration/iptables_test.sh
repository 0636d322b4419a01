#!/usr/bin/env bash
# skiff-iptables: the dry run (-n) against Istio's own goldens, the rules and their order for
# the other flag combinations istio-iptables' tests cover (asserted here in our words), the
# refusals, and - as root with working iptables - applying, re-applying, reconciling and
# cleaning up inside a network namespace this script creates and deletes. The host's own
# rules are never touched.
: "${SKIFF_BUILD:=$(cd "$(dirname "$0")/../.." && pwd)/build-dev}"
: "${SKIFF_BIN:=$SKIFF_BUILD/proxy/skiff}" # lib.sh wants it; this script does not use it
export SKIFF_BIN
. "$(dirname "$0")/lib.sh"

IPT="$SKIFF_BUILD/iptables/skiff-iptables"
case "$IPT" in /*) ;; *) IPT="$PWD/$IPT" ;; esac
GOLD="$SKIFF_CONFORMANCE/istio/iptables"
if [ ! -x "$IPT" ]; then
	_t_fail "binary" "$IPT is not built"
	summary
	exit 1
fi

# ipt ARGS...: runs skiff-iptables with an empty environment (istio-iptables reads its flags
# from variables such as DUAL_STACK or PROXY_UID too, so a stray one must not change a
# result); sets RC, OUT (stdout, exact: trailing newline kept) and ERR.
ipt() {
	env -i PATH="$PATH" timeout 20 "$IPT" "$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	OUT=$(
		cat "$TMP/out"
		printf x
	)
	OUT=${OUT%x}
	ERR=$(cat "$TMP/err")
}

# lines_of TEXT REGEX: the numbers of the lines of TEXT matching REGEX (grep -nE).
lines_of() { printf '%s' "$1" | grep -nE -- "$2" | cut -d: -f1 | tr '\n' ' '; }

# check_before NAME TEXT FIRST SECOND: the first line equal to FIRST comes before the first
# line equal to SECOND (both must be there).
check_before() {
	local a b
	a=$(printf '%s' "$2" | grep -nxF -- "$3" | head -n 1 | cut -d: -f1)
	b=$(printf '%s' "$2" | grep -nxF -- "$4" | head -n 1 | cut -d: -f1)
	if [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]; then
		_t_ok "$1"
		return 0
	fi
	_t_fail "$1" "want '$3' (line ${a:-none}) before '$4' (line ${b:-none}) in: $2"
	return 1
}

# section TEXT N: the Nth "* nat" .. COMMIT section of a dry run (1: IPv4, 2: IPv6).
section() {
	printf '%s' "$1" | awk -v n="$2" '$0 == "* nat" { s++ } s == n { print } s == n && $0 == "COMMIT" { exit }'
}

# chain_rules TEXT CHAIN: the rules appended to CHAIN, in order.
chain_rules() { printf '%s' "$1" | grep -E -- "^-A $2 " || true; }

# IPv6 is turned on by --dual-stack, and also (as in istio-iptables) when the host's first
# global address is IPv6; the IPv4-only goldens need a host with a global IPv4 address or
# none at all.
V6_HOST=0
if command -v ip >/dev/null 2>&1 && [ -z "$(ip -4 -o addr show scope global 2>/dev/null)" ] &&
	[ -n "$(ip -6 -o addr show scope global 2>/dev/null)" ]; then
	V6_HOST=1
fi

# ---------------------------------------------------------------------------------------
# Istio's goldens, compared exactly

if [ ! -d "$GOLD" ]; then
	skip "goldens" "no conformance corpus at $GOLD"
elif [ "$V6_HOST" -eq 1 ]; then
	skip "goldens" "this host is IPv6-only, so IPv6 rules are added as istio-iptables would"
else
	# capture_empty.golden is istio-iptables' dry-run record for exactly these flags
	# (capture/run_test.go "empty"): byte for byte, nothing normalized.
	ipt -p 15001 -z 15006 -e 15008 -u 1337 -g 1337 -n
	check_eq "capture_empty: exit 0" "$RC" 0
	if cmp -s "$TMP/out" "$GOLD/capture_empty.golden"; then
		_t_ok "capture_empty: -n output is the golden, byte for byte"
	else
		_t_fail "capture_empty: -n output is the golden" \
			"$(diff "$GOLD/capture_empty.golden" "$TMP/out" | head -n 20)"
	fi

	# cni_basic.txt.golden: istio-cni's defaults for a sidecar pod (cni/pkg/plugin:
	# sidecar_redirect.go and sidecar_iptables_linux.go: -p 15001, uid/gid 1337, REDIRECT,
	# -i '*', -x '', -b '*', -d 15020,15021,15090 (its fixed order), -o 15020). Istio's test
	# (plugin_dryrun_test.go getRules) keeps only the "* table" .. COMMIT sections of the
	# dry-run record, so the "iptables-save"/"ip6tables-save" lines, and only those, are
	# dropped here before the byte-for-byte comparison.
	ipt -p 15001 -u 1337 -g 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15020,15021,15090 -o 15020 -n
	check_eq "cni_basic: exit 0" "$RC" 0
	grep -vx -e iptables-save -e ip6tables-save "$TMP/out" >"$TMP/cni" || true
	if cmp -s "$TMP/cni" "$GOLD/cni_basic.txt.golden"; then
		_t_ok "cni_basic: tables of the -n output are the golden, byte for byte"
	else
		_t_fail "cni_basic: tables of the -n output are the golden" \
			"$(diff "$GOLD/cni_basic.txt.golden" "$TMP/cni" | head -n 20)"
	fi
fi

# The istio-init container's args in an injected pod, passed as they are (with the leading
# "istio-iptables" word pilot-agent takes and --log_output_level).
INJ="$SKIFF_CONFORMANCE/istio/inject/hello.yaml.injected"
if [ -f "$INJ" ] && [ "$V6_HOST" -eq 0 ]; then
	mapfile -t INIT_ARGS < <(awk '/^ *initContainers:/ { f = 1 } f && /- args:/ { a = 1; next }
		a && /^ *- / { sub(/^ *- /, ""); gsub(/^["'\'']|["'\'']$/, ""); print; next }
		a { exit }' "$INJ" | head -n 40)
	check_eq "injected init args: found" "${INIT_ARGS[0]:-} ${INIT_ARGS[1]:-}" "istio-iptables -p"
	ipt "${INIT_ARGS[@]}" -n
	check_eq "injected init args: exit 0" "$RC" 0
	ib=$(chain_rules "$OUT" ISTIO_INBOUND)
	check_eq "injected: inbound returns for the tunnel port, then -d in its order, then capture" \
		"$ib" "-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT"
	check_eq "injected: -i '*' sends the rest of ISTIO_OUTPUT to ISTIO_REDIRECT, last" \
		"$(chain_rules "$OUT" ISTIO_OUTPUT | tail -n 1)" "-A ISTIO_OUTPUT -j ISTIO_REDIRECT"
	check_eq "injected: no -g: the gid rules use the uid" \
		"$(chain_rules "$OUT" ISTIO_OUTPUT | grep -c -- '--gid-owner 1337')" 3
else
	skip "injected init args" "no $INJ (or IPv6-only host)"
fi

# ---------------------------------------------------------------------------------------
# The other cases of istio-iptables' capture tests, in our words

B="-p 15001 -z 15006 -e 15008 -u 1337 -g 1337"

# An outbound CIDR list instead of '*': only those prefixes go to the proxy.
ipt $B -i 10.0.0.0/8 -n
check_eq "include CIDR: the last ISTIO_OUTPUT rule redirects only 10.0.0.0/8" \
	"$(chain_rules "$OUT" ISTIO_OUTPUT | tail -n 1)" "-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT"
check_not_contains "include CIDR: no catch-all redirect" "$OUT" "-A ISTIO_OUTPUT -j ISTIO_REDIRECT"

# Exclusions are RETURNs after the localhost RETURN and before the inclusions.
ipt $B -x 1.1.0.0/16 -i 9.9.0.0/16 -n
check_before "exclude CIDR: after the localhost RETURN" "$OUT" \
	"-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN" "-A ISTIO_OUTPUT -d 1.1.0.0/16 -j RETURN"
check_before "exclude CIDR: before the include" "$OUT" \
	"-A ISTIO_OUTPUT -d 1.1.0.0/16 -j RETURN" "-A ISTIO_OUTPUT -d 9.9.0.0/16 -j ISTIO_REDIRECT"
check_eq "exclude CIDR: IPv4 only, no IPv6 section" "$(printf '%s' "$OUT" | grep -c '^\* nat')" 1

# Inbound '*' with exclusions: a RETURN per excluded port, in order, before the capture.
ipt $B -b '*' -d 6000,7000 -n
check_eq "exclude inbound ports: the ISTIO_INBOUND chain" "$(chain_rules "$OUT" ISTIO_INBOUND)" \
	"-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 6000 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 7000 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT"
check_contains "exclude inbound ports: PREROUTING sends tcp to ISTIO_INBOUND" "$OUT" \
	"-A PREROUTING -p tcp -j ISTIO_INBOUND"

# An inbound port list: each listed port is captured, in the given order, nothing else.
ipt $B -b 32000,31000 -d 6000 -n
check_eq "include inbound ports: the ISTIO_INBOUND chain (-d ignored without '*')" \
	"$(chain_rules "$OUT" ISTIO_INBOUND)" "-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 32000 -j ISTIO_IN_REDIRECT
-A ISTIO_INBOUND -p tcp --dport 31000 -j ISTIO_IN_REDIRECT"
ipt $B -n
check_not_contains "no -b: no PREROUTING jump at all" "$OUT" "-A PREROUTING"

# uid and gid lists: per id, in order (uids first), the same three rules: the proxy's
# connections to the pod over lo go to the inbound port, app traffic on lo stays, and the
# proxy's other traffic is never captured.
ipt -p 15001 -z 15006 -e 15008 -u 3,4 -g 1,2 -n
want=""
for id in uid:3 uid:4 gid:1 gid:2; do
	k=${id%%:*} v=${id#*:}
	want+="-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --$k-owner $v -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --$k-owner $v -j RETURN
-A ISTIO_OUTPUT -m owner --$k-owner $v -j RETURN
"
done
check_eq "uid/gid lists: the owner rules of ISTIO_OUTPUT" \
	"$(chain_rules "$OUT" ISTIO_OUTPUT | grep -- '-owner')" "${want%$'\n'}"
check_before "uid/gid lists: after the 127.0.0.6 passthrough RETURN" "$OUT" \
	"-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN" \
	"-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 3 -j ISTIO_IN_REDIRECT"

# kube-virt interfaces: traffic from them is treated as outbound; the RETURN for each is
# inserted first, and the redirects, inserted at the top after everything else, end above it.
ipt $B -k eth1,eth2 -i '*' -n
check_eq "kube-virt: PREROUTING inserts, in order" "$(printf '%s' "$OUT" | grep -- '^-I PREROUTING')" \
	"-I PREROUTING 1 -i eth1 -j RETURN
-I PREROUTING 1 -i eth2 -j RETURN
-I PREROUTING 1 -i eth1 -j ISTIO_REDIRECT
-I PREROUTING 1 -i eth2 -j ISTIO_REDIRECT"
check_before "kube-virt: the redirect inserts follow the catch-all" "$OUT" \
	"-A ISTIO_OUTPUT -j ISTIO_REDIRECT" "-I PREROUTING 1 -i eth1 -j ISTIO_REDIRECT"
ipt $B -k eth1 -i 10.0.0.0/8,10.1.0.0/16 -n
check_eq "kube-virt with CIDRs: one redirect insert per prefix" \
	"$(printf '%s' "$OUT" | grep -c -- '^-I PREROUTING 1 -i eth1 -d 10\.')" 2

# Excluded interfaces: RETURN in both directions, ahead of every capture rule.
ipt $B -c not-istio-nic -b '*' -n
check_before "excluded interface: PREROUTING RETURN before the ISTIO_INBOUND jump" "$OUT" \
	"-A PREROUTING -i not-istio-nic -j RETURN" "-A PREROUTING -p tcp -j ISTIO_INBOUND"
check_before "excluded interface: OUTPUT RETURN before the ISTIO_OUTPUT jump" "$OUT" \
	"-A OUTPUT -o not-istio-nic -j RETURN" "-A OUTPUT -j ISTIO_OUTPUT"

# Dual stack: a second nat table for ip6tables-restore with the IPv6 loopbacks; each CIDR
# lands in its own family; the record ends with both saves.
ipt $B --dual-stack -b 4000 -x 2001:db8::/32 -i 2001:DB8:0:0::/32,10.0.0.0/8 -n
v4=$(section "$OUT" 1)
v6=$(section "$OUT" 2)
check_eq "dual-stack: two nat sections" "$(printf '%s' "$OUT" | grep -c '^\* nat')" 2
check_contains "dual-stack: IPv4 keeps 10.0.0.0/8" "$v4" "-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT"
check_not_contains "dual-stack: no IPv6 prefix in IPv4" "$v4" "2001:db8"
check_contains "dual-stack: IPv6 passthrough source ::6" "$v6" "-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN"
check_contains "dual-stack: IPv6 loopback ::1" "$v6" "-A ISTIO_OUTPUT -d ::1/128 -j RETURN"
check_before "dual-stack: IPv6 exclude before include (prefix written as netip does)" "$v6" \
	"-A ISTIO_OUTPUT -d 2001:db8::/32 -j RETURN" "-A ISTIO_OUTPUT -d 2001:db8::/32 -j ISTIO_REDIRECT"
check_not_contains "dual-stack: no IPv4 prefix in IPv6" "$v6" "10.0.0.0/8"
check_eq "dual-stack: the record ends with both saves" "$(printf '%s' "$OUT" | tail -n 2)" \
	"iptables-save
ip6tables-save"

# Outbound ports: excluded ones return (tcp and udp) first thing; included ones are
# captured even when their address is not.
ipt $B -o 9000 -q 32000 -n
check_eq "outbound ports: the first ISTIO_OUTPUT rules are the -o RETURNs" \
	"$(chain_rules "$OUT" ISTIO_OUTPUT | head -n 2)" "-A ISTIO_OUTPUT -p tcp --dport 9000 -j RETURN
-A ISTIO_OUTPUT -p udp --dport 9000 -j RETURN"
check_eq "outbound ports: -q is captured last" "$(chain_rules "$OUT" ISTIO_OUTPUT | tail -n 1)" \
	"-A ISTIO_OUTPUT -p tcp --dport 32000 -j ISTIO_REDIRECT"

# Prefixes are written as istio-iptables writes them (Go's netip): the address is not
# masked, IPv6 is lower-case with the first longest zero run as "::", mapped IPv4 dotted.
ipt $B --dual-stack -i 10.0.0.1/8,2001:db8:0:0:1:0:0:1/128,::FFFF:10.0.0.0/104 -n
check_contains "prefix text: IPv4 kept unmasked" "$OUT" "-A ISTIO_OUTPUT -d 10.0.0.1/8 -j ISTIO_REDIRECT"
check_contains "prefix text: first zero run compressed" "$OUT" "-d 2001:db8::1:0:0:1/128 -j ISTIO_REDIRECT"
check_contains "prefix text: mapped IPv4 in the IPv6 table" "$(section "$OUT" 2)" "-d ::ffff:10.0.0.0/104 -j ISTIO_REDIRECT"

# A loopback prefix in -i: app-to-itself traffic on lo is captured too.
ipt $B -i 127.1.2.3/32 -n
check_not_contains "loopback include: no lo RETURN for other owners" "$OUT" "-o lo -m owner !"

# DNS to pilot-agent (all port 53): its own chain in nat and raw, port 53 kept out of the
# proxy's lo redirect.
ipt $B --redirect-dns --capture-all-dns -n
check_contains "dns: nat redirect to 15053" "$OUT" \
	"-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-port 15053"
check_contains "dns: raw table with conntrack zones" "$OUT" "* raw"
check_contains "dns: the proxy's lo redirect spares port 53" "$OUT" \
	"-m multiport ! --dports 53,15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT"

# --drop-invalid: a mangle table, written before nat.
ipt $B --drop-invalid -n
check_before "drop-invalid: mangle before nat" "$OUT" "* mangle" "* nat"

# Istio binds its flags to environment variables; the command line wins.
env -i PATH="$PATH" ISTIO_INBOUND_PORTS='*' "$IPT" $B -n >"$TMP/env" 2>&1
check "env: ISTIO_INBOUND_PORTS='*' captures inbound" grep -qxF -- "-A PREROUTING -p tcp -j ISTIO_INBOUND" "$TMP/env"
env -i PATH="$PATH" ISTIO_INBOUND_PORTS='*' "$IPT" $B -b 8080 -n >"$TMP/env" 2>&1
check "env: the -b flag overrides it" grep -qxF -- "-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_IN_REDIRECT" "$TMP/env"

# --cleanup-only -n: istio's own cleanup commands, jumps deleted before chains go.
ipt $B -b '*' -i '*' --cleanup-only -n
check_contains "cleanup -n: deletes the OUTPUT jump" "$OUT" "iptables -t nat -D OUTPUT -j ISTIO_OUTPUT"
check_before "cleanup -n: jump deleted before the chain is flushed" "$OUT" \
	"iptables -t nat -D PREROUTING -p tcp -j ISTIO_INBOUND" "iptables -t nat -F ISTIO_INBOUND"
check_before "cleanup -n: flushed, then deleted" "$OUT" \
	"iptables -t nat -F ISTIO_REDIRECT" "iptables -t nat -X ISTIO_REDIRECT"

# ---------------------------------------------------------------------------------------
# Refusals: exit 2 with a message that says what is wrong, before anything runs

ipt $B -m TPROXY -n
check_eq "TPROXY: exit 2" "$RC" 2
check_contains "TPROXY: says so" "$ERR" "TPROXY mode is not supported yet"
ipt $B --native-nftables -n
check_eq "--native-nftables: exit 2" "$RC" 2
ipt $B --run-validation
check_eq "--run-validation: exit 2" "$RC" 2
ipt $B -x '*' -n
check_eq "-x '*': exit 2" "$RC" 2
check_contains "-x '*': names the value" "$ERR" "OUTBOUND_IP_RANGES_EXCLUDE"
ipt $B -b 80,70000 -n
check_eq "bad port: exit 2" "$RC" 2
check_contains "bad port: names flag and value" "$ERR" "-b/--istio-inbound-ports: '70000'"
ipt $B -i 10.0.0.0 -n
check_eq "CIDR without bits: exit 2" "$RC" 2
ipt $B --no-such-flag -n
check_eq "unknown flag: exit 2" "$RC" 2
ipt $B -m SOMETHING -n
check_eq "unknown -m: exit 2" "$RC" 2
check_eq "no output on refusal" "$OUT" ""

# ---------------------------------------------------------------------------------------
# Applying for real, inside a network namespace of our own

NS="skiff-ipt-$$"
netns_ready() {
	[ "$(id -u)" -eq 0 ] || {
		echo "not root"
		return 1
	}
	command -v ip >/dev/null 2>&1 || {
		echo "no ip command (iproute2)"
		return 1
	}
	command -v iptables-restore >/dev/null 2>&1 && command -v iptables-save >/dev/null 2>&1 || {
		echo "no iptables-restore/iptables-save (apt-get install iptables)"
		return 1
	}
	ip netns add "$NS" 2>/dev/null || {
		echo "cannot create a network namespace"
		return 1
	}
	ip netns exec "$NS" iptables-save >/dev/null 2>&1 || {
		ip netns del "$NS" 2>/dev/null
		echo "iptables-save does not work in a network namespace"
		return 1
	}
	return 0
}

if why=$(netns_ready); then
	trap 'rc=$?; ip netns del "$NS" 2>/dev/null; (exit $rc); _t_cleanup' EXIT
	HOST_BEFORE=$(iptables-save 2>/dev/null | grep -v '^#')
	inns() { # ARGS...: skiff-iptables in the namespace; sets RC and ERR
		ip netns exec "$NS" env -i PATH="$PATH" timeout 30 "$IPT" "$@" >"$TMP/out" 2>"$TMP/err"
		RC=$?
		ERR=$(cat "$TMP/err")
	}
	nssave() { ip netns exec "$NS" "${1:-iptables}-save" 2>/dev/null | grep -v '^#'; }
	V6=""
	ip netns exec "$NS" ip6tables-save >/dev/null 2>&1 && V6=--dual-stack
	[ -n "$V6" ] || skip "netns IPv6" "ip6tables-save does not work here: IPv4 only"

	# someone else's rule in a chain we also use: it must survive everything
	ip netns exec "$NS" iptables -t nat -A OUTPUT -p udp --dport 9999 -j RETURN
	FLAGS=(-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x 10.1.0.0/16 -b '*' -d 15090,15021,15020 -k eth1 -c eth9)
	inns "${FLAGS[@]}" $V6
	check_eq "netns apply: exit 0" "$RC" 0
	S=$(nssave)
	check_eq "netns apply: the four chains" "$(printf '%s\n' "$S" | grep -c '^:ISTIO_')" 4
	check_contains "netns apply: PREROUTING jump" "$S" "-A PREROUTING -p tcp -j ISTIO_INBOUND"
	check_contains "netns apply: OUTPUT jump" "$S" "-A OUTPUT -j ISTIO_OUTPUT"
	check_eq "netns apply: as many rules in the kernel as -n prints" \
		"$(printf '%s\n' "$S" | grep -cE '^-A ')" \
		"$(($(ipt "${FLAGS[@]}" -n && printf '%s' "$OUT" | grep -cE '^-[AI] ') + 1))"
	check_eq "netns apply: ISTIO_INBOUND in order" \
		"$(printf '%s\n' "$S" | grep '^-A ISTIO_INBOUND' | grep -oE 'dport [0-9]+|ISTIO_IN_REDIRECT' | tr '\n' ' ')" \
		"dport 15008 dport 15090 dport 15021 dport 15020 ISTIO_IN_REDIRECT "
	check_eq "netns apply: the -k redirect is first in PREROUTING" \
		"$(printf '%s\n' "$S" | grep '^-A PREROUTING' | head -n 1)" "-A PREROUTING -i eth1 -j ISTIO_REDIRECT"
	if [ -n "$V6" ]; then
		S6=$(nssave ip6tables)
		check_contains "netns apply: IPv6 rules" "$S6" "-A ISTIO_OUTPUT -s ::6/128 -o lo -j RETURN"
	fi

	# the same again: nothing to do, nothing doubled
	inns "${FLAGS[@]}" $V6
	check_eq "netns re-apply: exit 0" "$RC" 0
	check_contains "netns re-apply: says nothing to do" "$ERR" "already in place"
	check_eq "netns re-apply: state unchanged" "$(nssave | grep -v '^:')" "$(printf '%s\n' "$S" | grep -v '^:')"

	# different flags over them: refused without --reconcile, and nothing changes
	inns -p 15001 -u 1337 -b 8080 -i '*' $V6
	check_eq "netns different rules: exit 1" "$RC" 1
	check_contains "netns different rules: says how to proceed" "$ERR" "--reconcile"
	check_eq "netns different rules: state unchanged" "$(nssave | grep -v '^:')" "$(printf '%s\n' "$S" | grep -v '^:')"
	inns -p 15001 -u 1337 -b 8080 -i '*' -k eth1 -c eth9 --reconcile $V6
	check_eq "netns --reconcile: exit 0" "$RC" 0
	S=$(nssave)
	check_contains "netns --reconcile: the new inbound rule" "$S" "--dport 8080 -j ISTIO_IN_REDIRECT"
	check_not_contains "netns --reconcile: the old exclusion is gone" "$S" "10.1.0.0/16"
	check_eq "netns --reconcile: one OUTPUT jump" "$(printf '%s\n' "$S" | grep -c -- '-A OUTPUT -j ISTIO_OUTPUT')" 1

	# cleanup: every ISTIO_* chain and jump, and the -k/-c RETURNs; the foreign rule stays
	inns -p 15001 -u 1337 -b 8080 -i '*' -k eth1 -c eth9 --cleanup-only $V6
	check_eq "netns cleanup: exit 0" "$RC" 0
	S=$(nssave)
	check_not_contains "netns cleanup: no ISTIO_ left" "$S" "ISTIO_"
	check_eq "netns cleanup: only the foreign rule is left" "$(printf '%s\n' "$S" | grep -E '^-A ')" \
		"-A OUTPUT -p udp -m udp --dport 9999 -j RETURN"
	[ -n "$V6" ] && check_not_contains "netns cleanup: no ISTIO_ left in IPv6" "$(nssave ip6tables)" "ISTIO_"
	inns --cleanup-only $V6
	check_eq "netns cleanup when absent: exit 0" "$RC" 0
	check_contains "netns cleanup when absent: says so" "$ERR" "nothing to remove"

	# a leftover chain and a doubled jump from elsewhere: cleanup takes them too
	ip netns exec "$NS" iptables -t nat -N ISTIO_OUTPUT
	ip netns exec "$NS" iptables -t nat -A OUTPUT -j ISTIO_OUTPUT
	ip netns exec "$NS" iptables -t nat -A OUTPUT -j ISTIO_OUTPUT
	inns --cleanup-only
	check_eq "netns partial cleanup: exit 0" "$RC" 0
	check_not_contains "netns partial cleanup: nothing left" "$(nssave)" "ISTIO_"

	# all or nothing across families: if ip6tables-restore fails, the IPv4 rules go again
	if [ -n "$V6" ]; then
		mkdir -p "$TMP/bin"
		printf '#!/bin/sh\necho "ip6tables-restore: refused by the test" >&2\nexit 1\n' >"$TMP/bin/ip6tables-restore"
		chmod +x "$TMP/bin/ip6tables-restore"
		ip netns exec "$NS" env -i PATH="$TMP/bin:$PATH" timeout 30 "$IPT" "${FLAGS[@]}" --dual-stack \
			>"$TMP/out" 2>"$TMP/err"
		check_eq "netns IPv6 failure: exit 1" "$?" 1
		check_not_contains "netns IPv6 failure: IPv4 rules taken out again" "$(nssave)" "ISTIO_"
	fi

	check_eq "host rules untouched" "$(iptables-save 2>/dev/null | grep -v '^#')" "$HOST_BEFORE"
	ip netns del "$NS"
else
	skip "netns apply/cleanup" "$why"
fi

summary
