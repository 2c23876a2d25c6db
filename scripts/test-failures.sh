#!/usr/bin/env bash
# test-failures.sh LOG: for each test that failed in LOG (go test -v
# output), its own output (the lines under its === RUN, CONT or NAME
# headers; the last 40), so that a CI log that shows only the test
# names (Makefile's e2e filter) also says why.
set -euo pipefail
log=${1:?usage: test-failures.sh LOG}
if ! grep -q -- '--- FAIL: ' "$log"; then # a panic or a timeout: no test named
	echo "=== no test failed by name; the last lines of $log:"
	tail -n 60 "$log"
	exit 0
fi
grep -oE -- '--- FAIL: [^ ]+' "$log" | awk '{ print $3 }' | sort -u | while read -r name; do
	echo "=== why $name failed (last lines of its output in $log):"
	awk -v n="$name" '$0 == "=== RUN   " n || $0 == "=== CONT  " n || $0 == "=== NAME  " n { on = 1; next }
		on && /^(=== |--- |PASS|FAIL|ok )/ { on = 0 } on' "$log" \
		| grep -v '^\s*$' | tail -n 40
done
