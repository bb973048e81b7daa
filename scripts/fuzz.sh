#!/usr/bin/env bash
# fuzz.sh runs every native Go fuzz target for FUZZTIME each (default 10s) and fails if any
# fails. Go fuzzes one target per run, so each target gets its own
#   go test -run '^$' -fuzz '^Name$' -fuzztime $FUZZTIME ./pkg
# Targets are listed with `go test -list '^Fuzz'`, so a new Fuzz function is picked up by
# itself. A failing input is written to the package's testdata/fuzz/<Name>/ (commit it with
# the fix: plain `go test` then replays it). docs/fuzzing.md says what each target asserts.
#
# Usage: scripts/fuzz.sh [package ...]          (default ./...)
#        FUZZTIME=5m scripts/fuzz.sh ./neon/     (longer, on some packages)
# FUZZFLAGS adds flags to every run (e.g. FUZZFLAGS=-parallel=1 on a shared machine).
set -uo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
FUZZFLAGS=${FUZZFLAGS:-}
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

list=$("$GO" test -run '^$' -list '^Fuzz' "${pkgs[@]}" 2>&1)
if [ $? -ne 0 ]; then
	echo "$list"
	echo "fuzz: listing the targets failed" >&2
	exit 1
fi

# -list prints a package's matching names, then "ok  <import path>  <time>".
targets=()
names=()
while read -r first second _; do
	case "$first" in
	Fuzz*) names+=("$first") ;;
	ok)
		for n in "${names[@]}"; do targets+=("$second $n"); done
		names=()
		;;
	esac
done <<<"$list"
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no Fuzz targets in ${pkgs[*]}" >&2
	exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
summary=()
failed=0
start=$SECONDS
for t in "${targets[@]}"; do
	pkg=${t% *}
	name=${t#* }
	t0=$SECONDS
	# shellcheck disable=SC2086 # FUZZFLAGS is a list of flags
	if "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" $FUZZFLAGS "$pkg" >"$log" 2>&1; then
		result=PASS
	else
		result=FAIL
		failed=$((failed + 1))
		cat "$log"
	fi
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	line=$(printf 'fuzz %s %-32s %-44s %4ss %10s execs' "$result" "$name" "$pkg" $((SECONDS - t0)) "${execs:-0}")
	echo "$line"
	summary+=("$line")
done

echo
echo "fuzz summary (FUZZTIME=$FUZZTIME, $((SECONDS - start))s in all):"
printf '%s\n' "${summary[@]}"
if [ $failed -gt 0 ]; then
	echo "fuzz: $failed of ${#targets[@]} targets failed; their failing inputs are in testdata/fuzz/ (go test -run=<Target>/<file> replays one)" >&2
	exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed"
