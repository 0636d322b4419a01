#!/usr/bin/env bash
# ca.sh: a throwaway test CA that issues SPIFFE workload certificates, as Istio's CA does
# (EC P-256 keys, the identity as the only URI SAN). Keys are written at test time into the
# given directory and never committed.
#
#   ca.sh DIR ca [NAME]                         root CA: DIR/NAME.crt, DIR/NAME.key (NAME: root)
#   ca.sh DIR workload NAME NS SA [options]     leaf:    DIR/NAME.crt, DIR/NAME.key, and
#                                               DIR/NAME-chain.crt (leaf + issuer, as SDS sends)
#     --ca CA          issuer (default root; make a second, foreign one with `ca.sh DIR ca other`)
#     --td DOMAIN      trust domain (default cluster.local): spiffe://DOMAIN/ns/NS/sa/SA
#     --uri URI        the URI SAN instead of the SPIFFE id built from NS and SA
#     --dns NAME       an extra DNS SAN (repeatable)
#     --email ADDR     an extra email SAN (repeatable)
#     --ip ADDR        an extra IP SAN (repeatable)
#     --days N         validity from five minutes ago, as Istio backdates (default 1)
#     --expired        valid for one day, ten days ago
#     --not-yet-valid  valid from tomorrow
#   ca.sh DIR crl NAME [--ca CA] [CERT...]      DIR/NAME.crl: CA's CRL revoking the DIR/CERT.crt
#
# A certificate costs two openssl runs (a few ms each; ~0.3 s where processes start slowly).
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
dir=$1 cmd=$2
shift 2
mkdir -p "$dir"

# Dates and serials come from bash builtins: every process costs time on slow machines.
export TZ=UTC
utc() { printf '%(%Y%m%d%H%M%S)TZ' "$(($1))"; } # utc SECONDS_SINCE_EPOCH
now=${EPOCHSECONDS:-$(date +%s)}

# A scratch `openssl ca` database and config in $work (OpenSSL 3.0's x509 cannot set a start
# date, hence `openssl ca`). $1: the subjectAltName of leaves (may be empty).
ca_setup() {
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	: >"$work/index.txt"
	printf '%x%04x\n' "$now" "$RANDOM" >"$work/serial"
	echo 01 >"$work/crlnumber"
	cat >"$work/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
crlnumber = $work/crlnumber
default_md = sha256
default_crl_days = 30
policy = any
unique_subject = no
copy_extensions = none
[any]
organizationName = optional
commonName = optional
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
${1:+subjectAltName = critical,$1}
authorityKeyIdentifier = keyid
CNF
}

need_ca() {
	[ -f "$dir/$1.crt" ] || { echo "ca.sh: no CA '$1' in $dir (run: ca.sh $dir ca $1)" >&2; exit 1; }
}

case $cmd in
ca)
	name=${1:-root}
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/$name.key" \
		-sha256 -days 3650 -subj "/O=skiff test/CN=$name CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash" \
		-out "$dir/$name.crt" 2>/dev/null
	;;
workload)
	[ $# -ge 3 ] || usage
	name=$1 ns=$2 sa=$3
	shift 3
	ca=root td=cluster.local uri="" days=1 start=$((now - 300)) extra=()
	while [ $# -gt 0 ]; do
		case $1 in
		--ca) ca=$2; shift ;;
		--td) td=$2; shift ;;
		--uri) uri=$2; shift ;;
		--dns) extra+=("DNS:$2"); shift ;;
		--email) extra+=("email:$2"); shift ;;
		--ip) extra+=("IP:$2"); shift ;;
		--days) days=$2; shift ;;
		--expired) start=$((now - 10 * 86400)) days=1 ;;
		--not-yet-valid) start=$((now + 86400)) ;;
		*) usage ;;
		esac
		shift
	done
	need_ca "$ca"
	[ -n "$uri" ] || uri="spiffe://$td/ns/$ns/sa/$sa"
	san="URI:$uri"
	for e in "${extra[@]}"; do san="$san,$e"; done
	ca_setup "$san"
	# Istio's workload certificates have an empty subject; OpenSSL's ca wants one field.
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/$name.key" \
		-subj "/O=cluster.local" -out "$work/leaf.csr" 2>/dev/null
	openssl ca -batch -notext -config "$work/ca.cnf" -extensions leaf \
		-cert "$dir/$ca.crt" -keyfile "$dir/$ca.key" \
		-startdate "$(utc "$start")" -enddate "$(utc "$start + $days * 86400")" \
		-in "$work/leaf.csr" -out "$dir/$name.crt" 2>/dev/null
	cat "$dir/$name.crt" "$dir/$ca.crt" >"$dir/$name-chain.crt"
	;;
crl)
	[ $# -ge 1 ] || usage
	name=$1 ca=root
	shift
	if [ "${1:-}" = --ca ]; then ca=$2; shift 2; fi
	need_ca "$ca"
	ca_setup ""
	for c in "$@"; do
		openssl ca -config "$work/ca.cnf" -cert "$dir/$ca.crt" -keyfile "$dir/$ca.key" \
			-revoke "$dir/$c.crt" 2>/dev/null
	done
	openssl ca -gencrl -config "$work/ca.cnf" -cert "$dir/$ca.crt" -keyfile "$dir/$ca.key" \
		-out "$dir/$name.crl" 2>/dev/null
	;;
*)
	usage
	;;
esac
