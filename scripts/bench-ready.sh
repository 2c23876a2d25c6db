#!/usr/bin/env bash
# The agent's ready time: from its launch until `ocigate-agentd status
# --wait` gets an answer (the agent creates its API socket once its
# programs are attached and its profiles loaded), next to the agent's own
# ready_after (its "agent ready" log line, counted from the process start):
#  1. cold: READY_RUNS starts with nothing pinned (--pin-dir '');
#  2. restart over pinned state: one start pins into a private directory
#     (READY_PIN_DIR, default /sys/fs/bpf/ocigate-bench-ready-PID), then
#     READY_RUNS restarts take the pinned programs over without loading
#     them (programs=reused), which `ocigate-agentd uninstall --bpf`
#     removes at the end.
# Medians next to the targets. Results go to bench-results/ready.md (and
# stdout).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export LC_ALL=C # EPOCHREALTIME with a decimal point

[ "$(id -u)" = 0 ] || { echo "bench-ready: run as root" >&2; exit 1; }
RUNS=${READY_RUNS:-5}
PIN_DIR=${READY_PIN_DIR:-/sys/fs/bpf/ocigate-bench-ready-$$}
out=bench-results
mkdir -p "$out"
work=$(mktemp -d /tmp/ocigate-bench-ready.XXXXXX)
pinned=
uninstall() {
	"$OCIGATE_BIN/ocigate-agentd" uninstall --bpf --socket "$work/agentd.sock" --pin-dir "$PIN_DIR" --state-dir "$work/state"
}
cleanup() {
	stop_agent
	if [ -n "$pinned" ]; then
		uninstall >&2 || echo "bench-ready: $PIN_DIR is left pinned" >&2
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# Only the start is measured: no adoption of the machine's containers,
# no containerd, no periodic check; the events go to a file.
isolated=(--runc-roots '' --containerd-socket '' --reconcile-interval 0)

# ready_start ARGS...: starts the agent and waits until it answers, then
# prints "LAUNCH_TO_ANSWER_MS READY_AFTER_MS PROGRAMS".
ready_start() {
	local t0 t1 line
	t0=$EPOCHREALTIME
	start_agent "$work" "${isolated[@]}" "$@"
	t1=$EPOCHREALTIME
	line=$(grep -m1 'agent ready' "$work/agentd.log")
	awk -v t0="$t0" -v t1="$t1" \
		-v after="$(sed -n 's/.*"ready_after": \([0-9.]*\).*/\1/p' <<<"$line")" \
		-v programs="$(sed -n 's/.*"programs": "\([a-z]*\)".*/\1/p' <<<"$line")" \
		'BEGIN {printf "%.0f %.0f %s\n", (t1 - t0) * 1000, after * 1000, programs}'
}

# measure NAME ARGS...: READY_RUNS starts and stops into $work/NAME.txt.
measure() {
	local name=$1 r
	shift
	: >"$work/$name.txt"
	for r in $(seq "$RUNS"); do
		ready_start "$@" >>"$work/$name.txt"
		stop_agent
	done
}

# row LABEL NAME TARGET_MS: a table row from $work/NAME.txt.
row() {
	local label=$1 name=$2 target=$3 wall after runs programs
	wall=$(cut -d' ' -f1 "$work/$name.txt" | median)
	after=$(cut -d' ' -f2 "$work/$name.txt" | median)
	runs=$(cut -d' ' -f1 "$work/$name.txt" | paste -sd' ')
	programs=$(cut -d' ' -f3 "$work/$name.txt" | sort | uniq -c | awk -v n="$RUNS" '{printf "%s%s %d/%d", (NR > 1) ? ", " : "", $2, $1, n}')
	echo "| $label | $wall | $runs | $after | $programs | <= $target | $(awk -v w="$wall" -v t="$target" 'BEGIN {print (w <= t) ? "yes" : "no"}') |"
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench-ready: $RUNS cold starts, nothing pinned" >&2
measure cold
echo "bench-ready: a start that pins into $PIN_DIR, then $RUNS restarts over it" >&2
pinned=yes
start_agent "$work" "${isolated[@]}" --pin-dir "$PIN_DIR" --state-dir "$work/state"
stop_agent
measure restart --pin-dir "$PIN_DIR" --state-dir "$work/state"
uninstall >&2
pinned=

{
	bench_header "scripts/bench-ready.sh"
	echo
	echo "| agent start | launch to status answered, median (ms) | each run (ms) | agent's ready_after, median (ms) | programs | target (ms) | met |"
	echo "|---|---|---|---|---|---|---|"
	row "cold, nothing pinned (--pin-dir '')" cold 1500
	row "restart over pinned state (same build)" restart 300
	echo
	echo "Median of $RUNS starts each; launch to answer is what \`status --wait\` callers see (polling every 20 ms), ready_after the agent's own log from its process start (to 10 ms); load average before: $load."
} | tee "$out/ready.md"
