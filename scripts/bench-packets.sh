#!/usr/bin/env bash
# What the per-packet points (receive, xmit, drop) cost the host's own
# traffic, and so what attaching them only while a loaded profile needs
# them saves: a host process that belongs to no workload connects,
# accepts and closes on loopback (test/bench/connectloop), in rounds
# that alternate between no profile needing the points (detached, as
# with the built-in profiles) and a profile of the Tetragon test
# policies on sk_filter_trim_cap, dev_hard_start_xmit and kfree_skb_reason
# loaded (attached; no workload is on it). Side by side: the connect
# loop's median ns per connect, and the points' programs' bpf_stats time
# per loopback packet (xmit runs once per packet leaving lo) while
# attached; detached, they do not run. Results go to
# bench-results/packets.md (and stdout).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[ "$(id -u)" = 0 ] || { echo "bench-packets: run as root" >&2; exit 1; }
ROUNDS=${PACKET_ROUNDS:-5}
CONNECTS=${PACKET_CONNECTS:-20000}
METRICS_ADDR=${PACKET_METRICS_ADDR:-127.0.0.1:16071}
out=bench-results
mkdir -p "$out"
work=$(mktemp -d /tmp/ocigate-bench-packets.XXXXXX)
cleanup() {
	stop_agent
	sysctl -qw kernel.bpf_stats_enabled=0 || true
	rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$work/connectloop" ./test/bench/connectloop
mkdir -p "$work/profiles" "$work/off"
tg=profiles/testdata/tetragon
{
	for p in net-sk-filter-receive net-dev-hard-start-xmit net-kfree-skb-reason; do
		cat "$tg/$p.yaml"
		echo ---
	done
	cat <<'EOF'
apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata: {name: bench-packets}
spec:
  match:
    annotations: [{key: ocigate.io/bench-packets, equals: "yes"}]
  mode: monitor
  policies:
  - name: net-sk-filter-receive
  - name: net-dev-hard-start-xmit
  - name: net-kfree-skb-reason
EOF
} >"$work/off/bench-packets.yaml"

start_agent "$work" --runc-roots '' --containerd-socket '' --reconcile-interval 0 --metrics-addr "$METRICS_ADDR"

# points_attached: how many of receive, xmit and drop the agent's status
# says are attached.
points_attached() {
	"$OCIGATE_BIN/ocigate-agentd" status --socket "$work/agentd.sock" -o json |
		jq '[.backends[] | select(.point == "receive" or .point == "xmit" or .point == "drop") | select(.detached | not)] | length'
}
# wait_points N: wait until the agent has N points attached (a detached
# point's links close shortly after the agent detaches it).
wait_points() {
	for _ in $(seq 100); do
		[ "$(points_attached)" = "$1" ] && return 0
		sleep 0.1
	done
	echo "bench-packets: the agent never had $1 per-packet points attached" >&2
	exit 1
}
# switch_points N: load (3) or remove (0) the profile and wait until the
# agent has that many points attached.
switch_points() {
	if [ "$1" = 3 ]; then mv "$work/off/bench-packets.yaml" "$work/profiles/"; else mv "$work/profiles/bench-packets.yaml" "$work/off/"; fi
	wait_points "$1"
}
# packet_stats: "MECHANISM[PROGRAM] run_time_ns run_cnt" of the
# per-packet points' programs.
packet_stats() {
	prog_stats '^(cgroup_skb/ingress|fentry/sk_filter_trim_cap|tracepoint/net/net_dev_start_xmit|tracepoint/skb/kfree_skb)$'
}

wait_points 0 # with the built-in profiles
sysctl -qw kernel.bpf_stats_enabled=1
: >"$work/on.txt"
: >"$work/off.txt"
: >"$work/progs.txt"
for r in $(seq "$ROUNDS"); do
	"$work/connectloop" "$CONNECTS" >>"$work/off.txt"
	switch_points 3
	packet_stats | sed 's/^/before /' >>"$work/progs.txt"
	"$work/connectloop" "$CONNECTS" >>"$work/on.txt"
	packet_stats | sed 's/^/after /' >>"$work/progs.txt"
	switch_points 0
done
sysctl -qw kernel.bpf_stats_enabled=0
off_med=$(median <"$work/off.txt")
on_med=$(median <"$work/on.txt")
# Per program: ns per run and runs per packet; their sum per packet and
# per connect (each round runs CONNECTS plus a tenth to warm up).
connects=$((ROUNDS * (CONNECTS + CONNECTS / 10)))
progs=$(awk -v n="$connects" '
	$1 == "before" { t[$2] -= $3; c[$2] -= $4 } $1 == "after" { t[$2] += $3; c[$2] += $4 }
	END { for (p in c) if (p ~ /^tracepoint\/net\/net_dev_start_xmit\[/) pk = c[p]; if (pk <= 0) pk = 1
		for (p in c) { if (c[p] > 0) printf "%s: %.0f ns x %.2f/packet; ", p, t[p] / c[p], c[p] / pk; sum += t[p] }
		printf "total %.0f ns per packet, %.0f ns per connect (%.1f packets each)", sum / pk, sum / n, pk / n }' "$work/progs.txt")
{
	bench_header "scripts/bench-packets.sh"
	echo
	echo "| measure | per-packet points detached | attached | ratio | |"
	echo "|---|---|---|---|---|"
	echo "| loopback connect+accept+close of a host process in no workload, median of $ROUNDS alternating rounds (ns) |" \
		"$off_med | $on_med | $(awk -v a="$on_med" -v b="$off_med" 'BEGIN {printf "%.3f", a / b}') | |"
	echo
	echo "Per-packet points' programs on that traffic while attached (bpf_stats): $progs. Detached (no loaded profile" \
		"needs them, as with the built-in profiles) they do not run: that time is what the agent no longer spends."
} | tee "$out/packets.md"
