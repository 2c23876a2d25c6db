#!/usr/bin/env bash
# make fuzz-short / make fuzz: each fuzzer for FUZZTIME (default 10s).
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context
# deadline exceeded" when -fuzztime ends while a worker is mid-run
# (golang/go#75804, fixed in Go 1.27): no input is at fault and none is
# written. Such a run is tried once more; any other failure, and any run
# that wrote a failing input, fails at once.
set -uo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}

# boundary_flake LOG: the failure is the coordinator's, not an input's.
boundary_flake() {
	grep -q 'context deadline exceeded' "$1" && ! grep -qE 'Failing input written|panic:' "$1"
}

run() { # PKG TARGET LOG
	"$GO" test -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME" "$1" >"$3" 2>&1
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for f in "$@"; do
	pkg=${f%%:*} target=${f#*:}
	if run "$pkg" "$target" "$log"; then
		tail -n 1 "$log"
		continue
	fi
	if boundary_flake "$log"; then
		echo "fuzz: $target: the fuzz coordinator's deadline race (golang/go#75804), no failing input; once more"
		if run "$pkg" "$target" "$log"; then
			tail -n 1 "$log"
			continue
		fi
	fi
	cat "$log"
	exit 1
done
