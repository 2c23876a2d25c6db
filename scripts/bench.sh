#!/usr/bin/env bash
# ocigate benchmarks, each a ratio measured side by side in one run:
#  1. loopback connect latency in an enforced vs an unenforced runc
#     container (rounds alternate; medians compared);
#  2. the connect program's own cost per run, from bpf_stats; and
#     fork+exec in an enforced vs an unenforced container, next to the
#     same rules with process events off and to the unenforced one run
#     again (the control), with the process tracking programs' cost
#     from bpf_stats and the agent's CPU;
#  3. the hook's round trip p50/p99, as installed, next to the exec of
#     /bin/true, of a Go program that does nothing and of a Go hook that
#     makes only registration's system calls (test/bench/minhook), against
#     the agent and against a server that answers at once: the floors of
#     any hook, of a Go hook, and of a Go hook that registers; with the
#     steps of each side (the hook's OCIGATE_HOOK_TIMING, the agent's log);
#  4. `runc run` of busybox `true` with vs without the hook, interleaved,
#     next to the same with /bin/true and with a Go program that does
#     nothing as its createRuntime hook (the floors of any hook and of a
#     hook written in Go);
#  5. the agent's memory and its BPF maps' with 5 000 registered workloads
#     and a process cache filled by a container's execs (the agent as
#     installed, without the profiler), with the heap profile's largest
#     parts (the same steps again with the profiler on);
#  6. events per second from the kernel to the events file, and where
#     loss starts (scripts/bench-events.sh);
#  7. the agent's ready time, cold and restarted over pinned state
#     (scripts/bench-ready.sh);
#  8. a host process's loopback connects with the per-packet points
#     detached vs attached, and their programs' time per packet
#     (scripts/bench-packets.sh).
# The agent runs as installed: its maps pinned (to a directory of this
# run, removed at the end with `uninstall --bpf`) and its workload
# records written (under /run), so a registration pays for its record.
# Results go to bench-results/ and a summary table to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
# Rounds of the connect loop: its median of 41 rounds moved by about 1%
# (1.004-1.025 over five runs with the programs' own cost at
# 1.010-1.015), as much as its margin: 81 rounds, about a minute more.
# The fork+exec loop takes EXEC_ROUNDS rounds of one burst of
# EXEC_BURST fork+execs from each of its four containers (below).
CONNECT_ROUNDS=${CONNECT_ROUNDS:-81}
EXEC_ROUNDS=${EXEC_ROUNDS:-241}
EXEC_BURST=${EXEC_BURST:-250}
CONNECTS=${CONNECTS:-20000}
out=bench-results
mkdir -p "$out"
work=$(mktemp -d /tmp/ocigate-bench.XXXXXX)
pin=/sys/fs/bpf/ocigate-bench-$$
state=/run/ocigate-bench-$$
PPROF_ADDR=${PPROF_ADDR:-127.0.0.1:16060}
METRICS_ADDR=${METRICS_ADDR:-127.0.0.1:16061}
# unpin stops the agent and removes what it pinned and recorded.
unpin() {
	stop_agent
	[ -d "$pin" ] || return 0
	"$OCIGATE_BIN/ocigate-agentd" uninstall --bpf --pin-dir "$pin" --state-dir "$state" --socket "$work/agentd.sock" >/dev/null
	rm -rf "$state"
}
cleanup() {
	unpin || true
	for id in bench-on bench-off bench-noev bench-ctl bench-off2 bench-create bench-true bench-nop bench-nop2; do runc delete -f "$id" >/dev/null 2>&1 || true; done
	sysctl -qw kernel.bpf_stats_enabled=0 || true
	rmdir /sys/fs/cgroup/unified/ocigate-demo 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$work/connectloop" ./test/bench/connectloop
CGO_ENABLED=0 go build -o "$work/hookbench" ./test/bench/hookbench
CGO_ENABLED=0 go build -o "$work/interleave" ./test/bench/interleave
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/nop" ./test/bench/nop
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/minhook" ./test/bench/minhook
CGO_ENABLED=0 go build -o "$work/rulescale" ./test/bench/rulescale
CGO_ENABLED=0 go build -o "$work/execloop" ./test/bench/execloop
CGO_ENABLED=0 go build -o "$work/regscale" ./test/bench/regscale
mk_rootfs "$work/rootfs" "$work/connectloop:bin/connectloop" "$work/execloop:bin/execloop"
# No periodic check: regscale's 5 000 cgroups have no process, which the
# check would take for stopped containers.
# As installed: without the profiler, whose sampled allocations cost
# memory of their own (the heap profile comes from a second agent, at
# the end).
mkdir -p "$work/profiles"
cp scripts/bench-profiles/bench-no-process-events.yaml "$work/profiles/"
agent_args=(--reconcile-interval 0 --pin-dir "$pin" --state-dir "$state" --metrics-addr "$METRICS_ADDR"
	--trusted-annotations ocigate.io/bench)
start_agent "$work" "${agent_args[@]}"
sock=$work/agentd.sock
mk_bundle "$work/on" "$work/rootfs" bench-on yes "$sock" /bin/connectloop "$CONNECTS"
mk_bundle "$work/off" "$work/rootfs" bench-off no "" /bin/connectloop "$CONNECTS"

# round_ratios OFF ON: the rounds' own ratios, ON's line over OFF's, one
# a line. Each round runs both, one after the other, so its ratio is free
# of what drifts between rounds (the machine's other load over the
# minutes of a run), which the ratio of the two medians is not; odd
# rounds run the unenforced container first, even ones the enforced
# (side_order), so neither side is always the one that runs second.
side_order() { if [ $(($1 % 2)) = 1 ]; then echo off on; else echo on off; fi; }
round_ratios() { paste -d' ' "$1" "$2" | awk '{ printf "%.3f\n", $2 / $1 }'; }
# paired_median OFF ON: the median of those ratios.
paired_median() { round_ratios "$1" "$2" | median | awk '{ printf "%.3f", $1 }'; }

# connect_prog_stats: run_time_ns run_cnt of the agent's cgroup/connect4
# program.
connect_prog_stats() { prog_stats '^cgroup/connect4$' | awk '{ t += $2; c += $3 } END { printf "%.0f %.0f\n", t, c }'; }

# all_prog_ns: the run time (ns) of all the agent's programs together.
all_prog_ns() { prog_stats '' | awk '{ t += $2 } END { printf "%.0f\n", t }'; }

echo "bench: connect latency, $CONNECT_ROUNDS alternating rounds of $CONNECTS connects"
sysctl -qw kernel.bpf_stats_enabled=1
: >"$work/on.txt"
: >"$work/off.txt"
on_ns=0 on_cnt=0 off_all=0 on_all=0
for r in $(seq "$CONNECT_ROUNDS"); do
	for side in $(side_order "$r"); do
		a0=$(all_prog_ns)
		if [ "$side" = off ]; then
			run_container "$work/off" bench-off 120 >>"$work/off.txt"
			off_all=$((off_all + $(all_prog_ns) - a0))
			continue
		fi
		read -r t0 c0 < <(connect_prog_stats)
		run_container "$work/on" bench-on 120 >>"$work/on.txt"
		read -r t1 c1 < <(connect_prog_stats)
		on_ns=$((on_ns + t1 - t0)) on_cnt=$((on_cnt + c1 - c0)) on_all=$((on_all + $(all_prog_ns) - a0))
	done
done
# All programs per connect+accept+close (each round makes a tenth more
# to warm up), either side, and the ratio they alone would make.
conns=$((CONNECT_ROUNDS * (CONNECTS + CONNECTS / 10)))
conn_bpf_off=$((off_all / conns)) conn_bpf_on=$((on_all / conns))
# The unenforced container's connects also run the program (attached at
# the cgroup root); measure its cost for an unregistered cgroup too.
read -r t0 c0 < <(connect_prog_stats)
run_container "$work/off" bench-off 120 >/dev/null
read -r t1 c1 < <(connect_prog_stats)
off_prog_ns=$(( (t1 - t0) / (c1 - c0 > 0 ? c1 - c0 : 1) ))
on_prog_ns=$(( on_ns / (on_cnt > 0 ? on_cnt : 1) ))
sysctl -qw kernel.bpf_stats_enabled=0
on_med=$(median <"$work/on.txt")
off_med=$(median <"$work/off.txt")
conn_floor=$(awk -v a="$conn_bpf_on" -v b="$conn_bpf_off" -v off="$off_med" 'BEGIN { printf "%.3f", 1 + (a - b) / off }')
conn_rounds=$(round_ratios "$work/off.txt" "$work/on.txt" | paste -sd, | sed 's/,/, /g')
conn_ratio=$(paired_median "$work/off.txt" "$work/on.txt")

# proc_prog_stats: "PROGRAM run_time_ns run_cnt" of the agent's process
# tracking programs.
proc_prog_stats() { prog_stats '^raw_tracepoint/sched_process_'; }

# Four containers run at once, each an execloop that serves bursts of
# EXEC_BURST fork+execs on request (test/bench/execloop): unenforced
# (off); enforced as installed, process events on (on); enforced under
# the same rules with process events off (noev: the
# bench-no-process-events profile, chosen by a trusted annotation),
# whose programs send no exec or exit records and whose agent has
# nothing to read; and unenforced again (ctl), the control: its ratio
# to off is what the run's noise alone makes of a median. Each round
# takes one burst from each, in an order that turns by one from round
# to round, so a round's four bursts are a fraction of a second apart.
# Whole runs of a container each (31 rounds of 2 200 fork+execs, one
# container after the other) gave round ratios from 0.85 to 1.30 and
# medians that moved by 0.02 from run to run with nothing changed: this
# VM's speed drifts from second to second by more than the ratios
# measured here.
echo "bench: fork+exec of /bin/true, $EXEC_ROUNDS rounds of bursts of $EXEC_BURST from four containers"
mk_bundle "$work/eon" "$work/rootfs" bench-on yes "$sock" /bin/execloop serve /bin/true
ANNOTATIONS='{"ocigate.io/bench": "no-process-events"}' \
	mk_bundle "$work/enoev" "$work/rootfs" bench-noev yes "$sock" /bin/execloop serve /bin/true
mk_bundle "$work/eoff" "$work/rootfs" bench-off no "" /bin/execloop serve /bin/true
mk_bundle "$work/ectl" "$work/rootfs" bench-ctl no "" /bin/execloop serve /bin/true
declare -A burst_in burst_out burst_pid
# exec_serve SIDE BUNDLE: starts the container bench-SIDE, its execloop
# serving bursts through two FIFOs (exec_burst).
exec_serve() {
	local side=$1 fd
	mkfifo "$work/burst-$side.in" "$work/burst-$side.out"
	# Without the FIFOs of the containers started before: an execloop
	# whose input another runc holds open would never see its end.
	(
		for fd in "${burst_in[@]}" "${burst_out[@]}"; do eval "exec $fd>&-"; done
		exec timeout -k 5 3600 runc run --bundle "$2" "bench-$side" <"$work/burst-$side.in" >"$work/burst-$side.out" 2>>"$work/burst.log"
	) &
	burst_pid[$side]=$!
	exec {fd}>"$work/burst-$side.in"
	burst_in[$side]=$fd
	exec {fd}<"$work/burst-$side.out"
	burst_out[$side]=$fd
}
# exec_burst SIDE: one burst's mean ns per fork+exec.
exec_burst() {
	local ns
	echo "$EXEC_BURST" >&"${burst_in[$1]}"
	read -r -t 120 -u "${burst_out[$1]}" ns || { echo "bench: the $1 container's execloop did not answer; its log:" >&2; cat "$work/burst.log" >&2; return 1; }
	echo "$ns"
}
# exec_stop: ends the execloops (end of input) and their containers.
exec_stop() {
	local side
	for side in "${!burst_in[@]}"; do
		eval "exec ${burst_in[$side]}>&- ${burst_out[$side]}<&-"
		wait "${burst_pid[$side]}" || true
		runc delete -f "bench-$side" >/dev/null 2>&1 || true
	done
}
exec_serve on "$work/eon"
exec_serve noev "$work/enoev"
exec_serve off "$work/eoff"
exec_serve ctl "$work/ectl"
for side in on off noev ctl; do : >"$work/exec-$side.txt"; done
: >"$work/exec-progs.txt"
sysctl -qw kernel.bpf_stats_enabled=1
agent_ticks() { awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"; }
exec_agent_ticks=0
exec_sides=(off on noev ctl)
for r in $(seq "$EXEC_ROUNDS"); do
	for i in 0 1 2 3; do
		side=${exec_sides[$(((i + r) % 4))]}
		if [ "$side" = on ]; then
			proc_prog_stats | sed 's/^/before /' >>"$work/exec-progs.txt"
			a0=$(agent_ticks)
			exec_burst on >>"$work/exec-on.txt"
			exec_agent_ticks=$((exec_agent_ticks + $(agent_ticks) - a0))
			proc_prog_stats | sed 's/^/after /' >>"$work/exec-progs.txt"
		else
			exec_burst "$side" >>"$work/exec-$side.txt"
		fi
	done
done
exec_stop
sysctl -qw kernel.bpf_stats_enabled=0
exec_on=$(median <"$work/exec-on.txt")
exec_off=$(median <"$work/exec-off.txt")
exec_ratio=$(paired_median "$work/exec-off.txt" "$work/exec-on.txt")
# The rounds' ratios, sorted: their spread, "LOW to HIGH", then their
# quartiles, "Q1, MEDIAN and Q3".
IFS=';' read -r exec_spread exec_quartiles < <(round_ratios "$work/exec-off.txt" "$work/exec-on.txt" | sort -n | awk '{a[NR] = $1} END {
	printf "%s to %s;%s, %s and %s\n", a[1], a[NR], a[int((NR + 3) / 4)], a[int((NR + 1) / 2)], a[int((3 * NR + 3) / 4)] }')
exec_noev=$(median <"$work/exec-noev.txt")
exec_ctl=$(median <"$work/exec-ctl.txt")
exec_noev_ratio=$(paired_median "$work/exec-off.txt" "$work/exec-noev.txt")
exec_ctl_ratio=$(paired_median "$work/exec-off.txt" "$work/exec-ctl.txt")
exec_events_ratio=$(paired_median "$work/exec-noev.txt" "$work/exec-on.txt")
# Per program: ns per run and runs per exec of the enforced bursts (each
# runs EXEC_BURST plus a twentieth to warm up).
execs_on=$((EXEC_ROUNDS * (EXEC_BURST + EXEC_BURST / 20)))
exec_progs=$(awk -v n="$execs_on" '
	$1 == "before" { t[$2] -= $3; c[$2] -= $4 } $1 == "after" { t[$2] += $3; c[$2] += $4 }
	END { for (p in c) if (c[p] > 0) { printf "%s: %.0f ns x %.2f/exec; ", p, t[p] / c[p], c[p] / n; sum += t[p] / n }
		printf "total %.0f ns per fork+exec+exit", sum }' "$work/exec-progs.txt")
# The agent's CPU (user+system, clock ticks of 10 ms) over the enforced
# rounds, per exec: its records read, process cache, events written.
exec_agent_us=$((exec_agent_ticks * 10000 / execs_on))
# What the ratio would be if only the kernel's programs cost (their ns
# per fork+exec+exit on the loop's own time), and if the agent's CPU
# delayed the loop in full too: the measured ratio between the two is
# what the agent's work on the other CPU costs the loop.
exec_bpf_ns=$(awk '{ sub(/.*total /, ""); print $1 + 0 }' <<<"$exec_progs")
exec_floor=$(awk -v b="$exec_bpf_ns" -v off="$exec_off" 'BEGIN { printf "%.3f", 1 + b / off }')
exec_ceiling=$(awk -v b="$exec_bpf_ns" -v a="$exec_agent_us" -v off="$exec_off" 'BEGIN { printf "%.3f", 1 + (b + a * 1000) / off }')

echo "bench: hook round trip"
mk_bundle "$work/hookspec" "$work/rootfs" bench-hook yes "$sock" /bin/true # the config.json a real bundle has
"$work/hookbench" --hook "$OCIGATE_BIN/ocigate-hook" --nop "$work/nop" --minimal "$work/minhook" --socket "$sock" --config "$work/hookspec/config.json" \
	--cgroup /sys/fs/cgroup/unified/ocigate-bench-hook -n "${HOOK_N:-300}" >"$work/hook.txt"
hk() { awk -v k="$1" '$1==k{print $2}' "$work/hook.txt"; }
hook_p50=$(hk hook_p50_us) hook_p99=$(hk hook_p99_us) true_p50=$(hk true_p50_us) version_p50=$(hk version_p50_us)
nop_p50=$(hk nop_p50_us) min_start_p50=$(hk minimal_start_p50_us) poststop_p50=$(hk hook_poststop_p50_us) min_p50=$(hk minimal_p50_us) min_instant_p50=$(hk minimal_instant_p50_us)
# The agent's steps of the same registrations, from its log: medians,
# and the p99 of all and of the record write.
agent_steps=$(grep 'workload registered' "$work/agentd.log" | grep '"container": "hookbench-' | awk '
	function srt(a, n,   i, j, x) { for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x } }
	function at(a, n, q,   k) { k = int(n * q); if (k < n * q) k++; return n ? a[k < 1 ? 1 : k] : 0 }
	{ n++; for (i = 1; i <= NF; i++) {
		if ($i == "\"verify_us\":") v[n] = $(i + 1) + 0; if ($i == "\"record_us\":") r[n] = $(i + 1) + 0
		if ($i == "\"maps_us\":") m[n] = $(i + 1) + 0; if ($i == "\"took\":") t[n] = $(i + 1) * 1e6
		if ($i == "\"start_us\":") s[n] = $(i + 1) + 0; if ($i == "\"read_us\":") d[n] = $(i + 1) + 0
		if ($i == "\"answer_us\":") w[n] = $(i + 1) + 0 } }
	END { srt(v, n); srt(r, n); srt(m, n); srt(t, n); srt(s, n); srt(d, n); srt(w, n)
		printf "%d %d %d %d %d %d %d %d %d", at(v, n, .5), at(r, n, .5), at(m, n, .5), at(t, n, .5), at(t, n, .99), at(r, n, .99),
			at(s, n, .5), at(d, n, .5), at(w, n, .5) }')
read -r agent_verify agent_record agent_maps agent_took agent_took99 agent_record99 agent_start agent_read agent_answer <<<"$agent_steps"

echo "bench: runc run true, with vs without the hook, interleaved"
mk_bundle "$work/ton" "$work/rootfs" bench-on yes "$sock" /bin/true
mk_bundle "$work/toff" "$work/rootfs" bench-off no "" /bin/true
mk_bundle "$work/toff2" "$work/rootfs" bench-off2 no "" /bin/true # the same again: the run's noise
mk_bundle "$work/tcreate" "$work/rootfs" bench-create create "$sock" /bin/true
mk_bundle "$work/ttrue" "$work/rootfs" bench-true hook:/bin/true "" /bin/true
mk_bundle "$work/tnop" "$work/rootfs" bench-nop "hook:$work/nop" "" /bin/true
mk_bundle "$work/tnop2" "$work/rootfs" bench-nop2 "hooks:$work/nop" "" /bin/true
# The agent's CPU over these rounds, per container of the two variants
# with ocigate's hook (warm-up rounds included): registration, the
# container's records and events, its unregistration or its cgroup's
# removal.
runc_a0=$(agent_ticks) runc_warmup=3
"$work/interleave" -n "${RUNC_RUNS:-400}" -warmup "$runc_warmup" "without-hook=runc run --bundle $work/toff bench-off" \
	"without-hook-again=runc run --bundle $work/toff2 bench-off2" \
	"with-hook=runc run --bundle $work/ton bench-on" "with-hook-no-poststop=runc run --bundle $work/tcreate bench-create" \
	"true-hook=runc run --bundle $work/ttrue bench-true" "nop-hook=runc run --bundle $work/tnop bench-nop" \
	"nop-hooks=runc run --bundle $work/tnop2 bench-nop2" >"$out/runc-run.txt"
runc_agent_us=$((($(agent_ticks) - runc_a0) * 10000 / (2 * (${RUNC_RUNS:-400} + runc_warmup))))
# rr NAME: the median of NAME's runs, in ms.
rr() { awk -v k="$1" '$1==k{printf "%.2f", $3/1000}' "$out/runc-run.txt"; }
runc_off=$(rr without-hook) runc_off2=$(rr without-hook-again) runc_on=$(rr with-hook) runc_create=$(rr with-hook-no-poststop)
runc_true=$(rr true-hook) runc_nop=$(rr nop-hook) runc_nop2=$(rr nop-hooks)

echo "bench: connect program cost vs rule set size and registrations"
"$work/rulescale" --connectloop "$work/connectloop" -n "${SCALE_CONNECTS:-20000}" -rounds 3 >"$out/rulescale.md"

# A full process cache: a registered container's processes, as many as
# the cache holds (65 536), exiting within its 30 s grace period, so
# two loops side by side; the table says how full it got.
fill=${CACHE_FILL:-36000}
mk_bundle "$work/fill" "$work/rootfs" bench-on yes "$sock" /bin/sh -c \
	"/bin/execloop $fill /bin/true & /bin/execloop $fill /bin/true; wait"
fill_cache() {
	echo "bench: filling the process cache (2 x $fill execs)"
	run_container "$work/fill" bench-on 300 >/dev/null
}
fill_cache
echo "bench: ${REG_N:-5000} registered workloads: agent RSS and BPF map memory"
"$work/regscale" --socket "$sock" -n "${REG_N:-5000}" --pid "$AGENT_PID" --metrics "$METRICS_ADDR" >"$out/regscale.md"
# The heap profile needs the profiler, which samples allocations from the
# start: the same again with an agent restarted with it, over the pins.
echo "bench: the same with the profiler on, for the heap profile"
stop_agent
start_agent "$work" "${agent_args[@]}" --pprof-addr "$PPROF_ADDR"
fill_cache
"$work/regscale" --socket "$sock" -n "${REG_N:-5000}" --pid "$AGENT_PID" --pprof "$PPROF_ADDR" \
	--heap-out "$out/regscale-heap.pb.gz" >"$out/regscale-pprof.md"
pprof_rss=$(awk -F' *[|] *' '/^[|] agent RSS .*after the registrations/ { print $4 }' "$out/regscale-pprof.md")
go tool pprof -top -sample_index=inuse_space -nodecount=15 "$OCIGATE_BIN/ocigate-agentd" "$out/regscale-heap.pb.gz" 2>/dev/null \
	| sed -n '/^Showing\|flat%/,$p' >"$out/regscale-heap.txt"
# The heap one process cache entry costs (a shell's child, exec'd and
# exited), to say how much of the live heap the cache is.
cache_entry_b=$(go test ./internal/agent/ -run '^$' -bench 'ProcessCacheEntry$' -benchtime 1x 2>/dev/null |
	awk '{ for (i = 2; i <= NF; i++) if ($i == "heap-B/entry") print $(i - 1) }' || true)
cache_entries=$(awk -F' *[|] *' '/^[|] process cache entries/ { print $4 }' "$out/regscale.md" || true)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
# hook_unmet: for a hook p50 over its target, what it is spent on, next
# to the floors of this run.
hook_unmet() {
	awk -v h="$hook_p50" -v t="$true_p50" -v n="$nop_p50" -v v="$version_p50" -v m="$min_p50" -v e="$min_instant_p50" -v ms="$min_start_p50" \
		-v a="$agent_took" -v av="$agent_verify" -v ar="$agent_record" -v am="$agent_maps" -v h99="$hook_p99" \
		-v t99="$(hk true_p99_us)" -v m99="$(hk minimal_p99_us)" -v e99="$(hk minimal_instant_p99_us)" -v a99="$agent_took99" \
		-v r99="$agent_record99" -v ss="$agent_start" -v sr="$agent_read" -v sa="$agent_answer" 'BEGIN {
		if (h99 > 4000) printf "\nHook p99 over its target (%d us > 4000). The p99s of the same rounds: the exec of /bin/true" \
			" %d us; the minimal Go hook %d against the server that answers at once, %d against this agent; the agent'"'"'s own" \
			" time for a registration (its log) %d, of which the record write %d.\n", h99, t99, e99, m99, a99, r99
		if (h <= 1500) exit
		left = e < 1500 ? sprintf("leaves %d us of the target for the agent'"'"'s work and the hook'"'"'s own", 1500 - e) : \
			sprintf("is itself %d us over the target", e - 1500)
		printf "\nHook p50 over its target (%d us > 1500). The floors, measured in the same rounds: the exec of /bin/true %d us" \
			" (fork, exec, exit and wait of the smallest process here); a static Go program that does nothing %d; a Go hook that" \
			" makes only the system calls registration needs (test/bench/minhook: read the state and config.json, the cgroup and" \
			" namespaces, one round trip on the socket; no flags, no JSON decoding, no checks) %d against a server process that answers" \
			" at once (a Go daemon that does no work), and %d against this agent. No Go hook that registers with a Go daemon over a" \
			" socket takes less than %d us here, which" \
			" %s. The agent'"'"'s share is %+d us: %d of" \
			" work in its handler (verify the cgroup and namespaces %d, write the workload record %d, map writes %d), %d in its" \
			" server'"'"'s steps around the handler (accept to the connection'"'"'s goroutine %d, read and decode the request %d," \
			" the wait for its bytes included, encode and write the answer %d), the rest wake-ups across processes and CPU" \
			" taken from the hook on this 2-CPU machine. ocigate-hook adds %+d us to the minimal hook: its" \
			" start (`--version` %+d over the minimal hook'"'"'s own start, %d; that one %+d over the Go program that does" \
			" nothing), its flags, the state'"'"'s and config'"'"'s decoding and checks, its failure policy and its deadline. With the handler'"'"'s work alone, a Go hook" \
			" that registers with this agent takes at least %d us here (%d + %d)%s.\n", h, t, n, e, m, e, left, m - e, a, av,
			ar, am, ss + sr + sa, ss, sr, sa, h - m, v - ms, ms, ms - n, e + a, e, a, (e + a > 1500 ? ", over the target" : "") }'
	[ "$hook_p50" -le 1500 ] && return
	echo
	hu() { echo "$(hk "$1_cpu_p50_us") / $(hk "$1_minflt_p50")"; }
	echo "What each process used itself (getrusage of the child, medians: CPU us, user and kernel, exec included / minor page" \
		"faults): /bin/true $(hu true), the Go program that does nothing $(hu nop), \`ocigate-hook --version\` $(hu version)," \
		"the minimal Go hook's registration $(hu minimal), ocigate-hook's $(hu hook)."
}
# runc_unmet: for a runc run ratio over its target, what the hook adds,
# next to the floors of this run (the same container with /bin/true and
# with the Go program that does nothing as its hook).
runc_unmet() {
	awk -v off="$runc_off" -v on="$runc_on" -v cr="$runc_create" -v tr="$runc_true" -v np="$runc_nop" -v np2="$runc_nop2" \
		-v ps="$poststop_p50" -v off2="$runc_off2" -v m="$((min_instant_p50 + agent_took))" -v t="$true_p50" -v ac="$runc_agent_us" '
		BEGIN { if (cr / off <= 1.05 && on / off <= 1.05) exit
		printf "\nrunc run over its target (createRuntime only %.3f, both hooks %.3f; the same run without a hook, measured" \
			" again in the same rounds, %.3f: the noise of these ratios): runc running any createRuntime hook" \
			" costs %+.2f ms (/bin/true as the hook, %.3f); a Go hook that does nothing %+.2f ms (%.3f), and as both hooks" \
			" %+.2f ms (%.3f); ocigate'"'"'s hook %+.2f ms beyond that Go floor (its start, state, cgroup and the agent'"'"'s" \
			" answer, as above). The poststop hook adds %+.2f ms (a second hook process, round trip p50 %d us), %+.2f ms" \
			" beyond the Go floor of two hooks; with --no-poststop the agent drops a workload itself when its cgroup is" \
			" removed. A createRuntime hook that registers costs runc at least what /bin/true as its hook does plus the" \
			" lowest round trip of a Go hook that registers (above) beyond the exec of /bin/true (%d - %d us): %+.2f ms," \
			" a ratio of at least %.3f%s. The agent used %d us of CPU per container with ocigate'"'"'s hook (its registration," \
			" the container'"'"'s records and events, its unregistration or its cgroup'"'"'s removal), on the same two CPUs as runc.\n",
			cr / off, on / off, off2 / off, tr - off, tr / off, np - off, np / off, np2 - off, np2 / off,
			cr - np, on - cr, ps, (on - cr) - (np2 - np), m, t, (tr - off) + (m - t) / 1000, (tr + (m - t) / 1000) / off,
			((tr + (m - t) / 1000) / off > 1.05 ? ", over the target" : ""), ac }'
}
{
	bench_header "scripts/bench.sh"
	echo
	echo "| measure | unenforced / baseline | enforced / with ocigate | ratio | target |"
	echo "|---|---|---|---|---|"
	echo "| loopback connect+accept+close in a runc container, median of $CONNECT_ROUNDS rounds (ns); ratio: the median of the rounds' own | $off_med | $on_med | $conn_ratio | <= 1.02 |"
	echo "| fork+exec of /bin/true in a runc container, median of $EXEC_ROUNDS bursts of $EXEC_BURST (ns); ratio: the median of the rounds' own | $exec_off | $exec_on | $exec_ratio | <= 1.03 |"
	echo "| fork+exec: the same rules with process events off (no exec and exit records, nothing for the agent to read) | $exec_off | $exec_noev | $exec_noev_ratio | |"
	echo "| fork+exec: process events on vs off, both enforced (the records and the agent's work on them) | $exec_noev | $exec_on | $exec_events_ratio | |"
	echo "| control: fork+exec unenforced again, a fourth container in the same rounds (the run's noise) | $exec_off | $exec_ctl | $exec_ctl_ratio | |"
	echo "| connect4 BPF program per run (bpf_stats, ns): unregistered vs registered cgroup | $off_prog_ns | $on_prog_ns | $(ratio "$on_prog_ns" "$off_prog_ns") | |"
	echo "| hook createRuntime round trip p50 (us) vs exec of /bin/true | $true_p50 | $hook_p50 | $(ratio "$hook_p50" "$true_p50") | <= 1500 us |"
	echo "| hook createRuntime round trip p99 (us) | | $hook_p99 | | <= 4000 us |"
	echo "| hook start alone: \`ocigate-hook --version\` p50 (us) vs exec of /bin/true | $true_p50 | $version_p50 | $(ratio "$version_p50" "$true_p50") | |"
	echo "| floor: the minimal Go hook's start alone (\`minhook --start\`) p50 (us) vs exec of /bin/true | $true_p50 | $min_start_p50 | $(ratio "$min_start_p50" "$true_p50") | |"
	echo "| floor: exec of a static Go program that does nothing, p50 (us) vs exec of /bin/true | $true_p50 | $nop_p50 | $(ratio "$nop_p50" "$true_p50") | |"
	echo "| floor: a Go hook that makes only registration's system calls, p50 (us): against a server process that answers at once vs against the agent | $min_instant_p50 | $min_p50 | $(ratio "$min_p50" "$min_instant_p50") | |"
	echo "| hook createRuntime round trip p50 (us) vs that minimal Go hook's, both against the agent | $min_p50 | $hook_p50 | $(ratio "$hook_p50" "$min_p50") | |"
	echo "| hook poststop round trip p50 (us) vs exec of /bin/true | $true_p50 | $poststop_p50 | $(ratio "$poststop_p50" "$true_p50") | |"
	echo "| runc run busybox true, both hooks, median of ${RUNC_RUNS:-400} interleaved (ms) | $runc_off | $runc_on | $(ratio "$runc_on" "$runc_off") | <= 1.05 |"
	echo "| runc run busybox true, createRuntime hook only (--no-poststop), median (ms) | $runc_off | $runc_create | $(ratio "$runc_create" "$runc_off") | <= 1.05 |"
	echo "| control: runc run busybox true without a hook again, a second command in the same rounds (the run's noise), median (ms) | $runc_off | $runc_off2 | $(ratio "$runc_off2" "$runc_off") | |"
	echo "| floor: runc run busybox true, /bin/true as createRuntime hook, median (ms) | $runc_off | $runc_true | $(ratio "$runc_true" "$runc_off") | |"
	echo "| floor: runc run busybox true, the Go program that does nothing as createRuntime hook, median (ms) | $runc_off | $runc_nop | $(ratio "$runc_nop" "$runc_off") | |"
	echo "| floor: runc run busybox true, the Go program that does nothing as createRuntime and poststop hooks, median (ms) | $runc_off | $runc_nop2 | $(ratio "$runc_nop2" "$runc_off") | |"
	echo
	echo "Hook round trip, where the time goes (medians of ${HOOK_N:-300}, us): hook side (OCIGATE_HOOK_TIMING, in a second" \
		"registration of each round, whose own time stamps add to its steps):" \
		"launch to main $(hk hook_step_start_p50_us) (\`--version\` whole: $version_p50), flags $(hk hook_step_flags_p50_us)," \
		"load state and config.json $(hk hook_step_load_p50_us), resolve cgroup and namespaces $(hk hook_step_resolve_p50_us)," \
		"call (connect, send, agent, answer) $(hk hook_step_call_p50_us), launch to the end of run $(hk hook_step_total_p50_us); then the exit" \
		"and the launcher's wait. Agent side (its log): its server's steps around the handler (accept to the connection's" \
		"goroutine $agent_start, read and decode the request $agent_read, the wait for its bytes included; encode and write the" \
		"answer $agent_answer) and the handler's (verify and choose $agent_verify, record write $agent_record, map writes" \
		"$agent_maps, all $agent_took)."
	hook_unmet
	runc_unmet
	echo
	echo "loopback connect+accept+close, all of the agent's programs (bpf_stats): $conn_bpf_off ns per connect in the unenforced" \
		"container (every host socket pays it), $conn_bpf_on ns in the enforced one; against the unenforced loop's $off_med ns the" \
		"programs alone make a ratio of $conn_floor. The rounds' own ratios, enforced / unenforced (each round runs both" \
		"containers, the unenforced first in odd rounds, the enforced in even ones): $conn_rounds; the ratio of the two medians is $(ratio "$on_med" "$off_med")."
	echo
	echo "fork+exec process tracking programs (bpf_stats, enforced bursts; the runs per exec count the bench's own few processes between bursts too): $exec_progs. The agent's CPU over the" \
		"enforced bursts: $exec_agent_us us per fork+exec+exit (its two events written, its idle polling included)." \
		"Against the unenforced loop's $exec_off ns, the programs alone make a ratio of $exec_floor, and programs plus the agent's" \
		"CPU in full, were it all on the loop's path, $exec_ceiling; the loop forks, execs and waits mostly on one CPU, so the agent" \
		"runs on the other, and the measured ratio above that floor is its share of the two CPUs (wakeups, caches) and the noise of the run." \
		"The rounds' own ratios (enforced burst over the unenforced one of the same round) go from $exec_spread; their quartiles are $exec_quartiles; the ratio of the two medians is $(ratio "$exec_on" "$exec_off")." \
		"In the same rounds, the same rules with process events off make $exec_noev_ratio (exec tracking and the decisions, no" \
		"records); process events on vs off, both enforced, $exec_events_ratio: what the exec and exit records and the agent's work on" \
		"them (reading, its process cache, encoding and writing two events per fork+exec+exit) cost the loop on these two CPUs; and" \
		"the control, a second unenforced container, $exec_ctl_ratio: a median of $EXEC_ROUNDS such rounds moves that much with nothing changed."
	echo
	cat "$out/rulescale.md"
	echo
	cat "$out/regscale.md"
	echo
	echo "Of the live heap, the process cache's ${cache_entries:-?} entries at ${cache_entry_b:-?} bytes each (an exited process kept for its grace period, as these are; BenchmarkProcessCacheEntry)" \
		"are $(awk -v n="${cache_entries:-0}" -v b="${cache_entry_b:-0}" 'BEGIN { printf "%.1f", n * b / 1048576 }') MiB."
	echo
	echo "The agent's heap with ${REG_N:-5000} workloads registered and the process cache filled (pprof inuse_space, after a collection)," \
		"from the same steps again with an agent restarted with --pprof-addr (settled RSS ${pprof_rss:-?} MiB with the profiler's sampling):"
	echo
	echo '```'
	cat "$out/regscale-heap.txt"
	echo '```'
} | tee "$out/summary.md"

# Event throughput, with an agent of its own.
unpin
echo "bench: event throughput, kernel to the events file"
scripts/bench-events.sh >/dev/null
{
	echo
	cat "$out/events.md"
} | tee -a "$out/summary.md"

echo "bench: agent ready time, cold and restarted over pinned state"
scripts/bench-ready.sh >/dev/null
{
	echo
	cat "$out/ready.md"
} | tee -a "$out/summary.md"

echo "bench: per-packet points, detached vs attached"
scripts/bench-packets.sh >/dev/null
{
	echo
	cat "$out/packets.md"
} | tee -a "$out/summary.md"

# The last whole run is the reference the README links to.
{
	echo "<!-- Written by make bench (scripts/bench.sh) from its last run; do not edit. -->"
	echo "# ocigate benchmarks"
	echo
	cat "$out/summary.md"
} >docs/bench.md
echo "bench: summary written to docs/bench.md"
