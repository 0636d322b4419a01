#!/usr/bin/env bash
# Runs every test of skiff against the build in $SKIFF_BUILD and sums their counts.
# Each test program or script prints a last line "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/.."
: "${SKIFF_BUILD:?set SKIFF_BUILD to a meson build directory}"
export SKIFF_BUILD SKIFF_BIN="$SKIFF_BUILD/proxy/skiff" SKIFF_SRC="$PWD"
# Istio's real output lives beside the project (../shared/conformance), never inside it.
if [ -z "${SKIFF_CONFORMANCE:-}" ]; then
	for d in "$PWD/../shared/conformance" /work/shared/conformance; do
		[ -d "$d/istio" ] && SKIFF_CONFORMANCE=$d && break
	done
fi
export SKIFF_CONFORMANCE="${SKIFF_CONFORMANCE:-$PWD/../shared/conformance}"
[ -d "$SKIFF_CONFORMANCE/istio" ] || echo "warning: no conformance corpus at $SKIFF_CONFORMANCE: those tests skip"

total_pass=0 total_fail=0 total_skip=0
run_one() { # name command...
	local name=$1 out last p f s rc
	shift
	out=$(timeout 300 "$@" 2>&1)
	rc=$?
	last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
	if [ -z "$last" ]; then
		printf '%s\n' "$out" | tail -n 30
		echo "== $name: no summary line (exit $rc): counted as 1 failure"
		total_fail=$((total_fail + 1))
		return
	fi
	p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$last")
	f=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$last")
	s=$(grep -oE '[0-9]+ skipped' <<<"$last" | grep -oE '[0-9]+' || echo 0)
	if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
		printf '%s\n' "$out" | grep -vE '^(ok|PASS) ' | tail -n 60
		[ "$f" -eq 0 ] && f=1 && echo "== $name: exit $rc"
	fi
	printf '%-40s %s\n' "$name" "$last"
	total_pass=$((total_pass + p)) total_fail=$((total_fail + f)) total_skip=$((total_skip + s))
}

for t in $(find "$SKIFF_BUILD/tests" -maxdepth 2 -type f -name '*_test' -perm -u+x | sort); do
	case $(basename "$t") in
	*_fuzz_test) kind=fuzz ;;
	roundtrip_test) kind=conformance ;;
	*) kind=unit ;;
	esac
	run_one "$kind/$(basename "$t")" "$t"
done
for t in tests/integration/*_test.sh tests/conformance/*_test.sh; do
	[ -f "$t" ] || continue
	run_one "${t#tests/}" bash "$t"
done
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
