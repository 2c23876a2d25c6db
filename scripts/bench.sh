#!/usr/bin/env bash
# ocigate benchmarks, each a ratio measured side by side in one run:
#  1. loopback connect latency in an enforced vs an unenforced runc
#     container (rounds alternate; medians compared);
#  2. the connect program's own cost per run, from bpf_stats;
#  3. the hook's round trip p50/p99 next to the exec of /bin/true;
#  4. `runc run` of busybox `true` with vs without the hook (hyperfine);
#  5. the agent's memory and its BPF maps' with 5 000 registered workloads;
#  6. events per second from the kernel to the events file, and where
#     loss starts (scripts/bench-events.sh);
#  7. the agent's ready time, cold and restarted over pinned state
#     (scripts/bench-ready.sh).
# Results go to bench-results/ and a summary table to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
ROUNDS=${ROUNDS:-5}
CONNECTS=${CONNECTS:-20000}
out=bench-results
mkdir -p "$out"
work=$(mktemp -d /tmp/ocigate-bench.XXXXXX)
cleanup() {
	stop_agent
	for id in bench-on bench-off bench-create; do runc delete -f "$id" >/dev/null 2>&1 || true; done
	sysctl -qw kernel.bpf_stats_enabled=0 || true
	rmdir /sys/fs/cgroup/unified/ocigate-demo 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$work/connectloop" ./test/bench/connectloop
CGO_ENABLED=0 go build -o "$work/hookbench" ./test/bench/hookbench
CGO_ENABLED=0 go build -o "$work/rulescale" ./test/bench/rulescale
CGO_ENABLED=0 go build -o "$work/execloop" ./test/bench/execloop
CGO_ENABLED=0 go build -o "$work/regscale" ./test/bench/regscale
mk_rootfs "$work/rootfs" "$work/connectloop:bin/connectloop" "$work/execloop:bin/execloop"
# No periodic check: regscale's 5 000 cgroups have no process, which the
# check would take for stopped containers.
start_agent "$work" --reconcile-interval 0
sock=$work/agentd.sock
mk_bundle "$work/on" "$work/rootfs" bench-on yes "$sock" /bin/connectloop "$CONNECTS"
mk_bundle "$work/off" "$work/rootfs" bench-off no "" /bin/connectloop "$CONNECTS"

connect_prog_stats() { # run_time_ns run_cnt of the connect4 program
	bpftool -j prog show name connect4 | jq -r 'if type=="array" then .[0] else . end | "\(.run_time_ns // 0) \(.run_cnt // 0)"'
}

echo "bench: connect latency, $ROUNDS alternating rounds of $CONNECTS connects"
sysctl -qw kernel.bpf_stats_enabled=1
: >"$work/on.txt"
: >"$work/off.txt"
on_ns=0 on_cnt=0
for r in $(seq "$ROUNDS"); do
	run_container "$work/off" bench-off 120 >>"$work/off.txt"
	read -r t0 c0 < <(connect_prog_stats)
	run_container "$work/on" bench-on 120 >>"$work/on.txt"
	read -r t1 c1 < <(connect_prog_stats)
	on_ns=$((on_ns + t1 - t0)) on_cnt=$((on_cnt + c1 - c0))
done
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

echo "bench: fork+exec of /bin/true, $ROUNDS alternating rounds"
mk_bundle "$work/eon" "$work/rootfs" bench-on yes "$sock" /bin/execloop "${EXECS:-2000}" /bin/true
mk_bundle "$work/eoff" "$work/rootfs" bench-off no "" /bin/execloop "${EXECS:-2000}" /bin/true
: >"$work/exec-on.txt"
: >"$work/exec-off.txt"
for r in $(seq "$ROUNDS"); do
	run_container "$work/eoff" bench-off 120 >>"$work/exec-off.txt"
	run_container "$work/eon" bench-on 120 >>"$work/exec-on.txt"
done
exec_on=$(median <"$work/exec-on.txt")
exec_off=$(median <"$work/exec-off.txt")

echo "bench: hook round trip"
"$work/hookbench" --hook "$OCIGATE_BIN/ocigate-hook" --socket "$sock" \
	--cgroup /sys/fs/cgroup/unified/ocigate-bench-hook -n "${HOOK_N:-300}" >"$work/hook.txt"
hook_p50=$(awk '$1=="hook_p50_us"{print $2}' "$work/hook.txt")
hook_p99=$(awk '$1=="hook_p99_us"{print $2}' "$work/hook.txt")
true_p50=$(awk '$1=="true_p50_us"{print $2}' "$work/hook.txt")

echo "bench: runc run true, with vs without the hook"
mk_bundle "$work/ton" "$work/rootfs" bench-on yes "$sock" /bin/true
mk_bundle "$work/toff" "$work/rootfs" bench-off no "" /bin/true
mk_bundle "$work/tcreate" "$work/rootfs" bench-create create "$sock" /bin/true
hyperfine -N --warmup 3 --runs "${RUNC_RUNS:-30}" --export-json "$out/runc-run.json" \
	-n without-hook "runc run --bundle $work/toff bench-off" \
	-n with-hook "runc run --bundle $work/ton bench-on" \
	-n with-hook-no-poststop "runc run --bundle $work/tcreate bench-create" >"$out/runc-run.txt"
runc_off=$(jq '.results[] | select(.command=="without-hook") | .mean' "$out/runc-run.json")
runc_on=$(jq '.results[] | select(.command=="with-hook") | .mean' "$out/runc-run.json")
runc_create=$(jq '.results[] | select(.command=="with-hook-no-poststop") | .mean' "$out/runc-run.json")

echo "bench: connect program cost vs rule set size and registrations"
"$work/rulescale" --connectloop "$work/connectloop" -n "${SCALE_CONNECTS:-20000}" -rounds 3 >"$out/rulescale.md"

echo "bench: ${REG_N:-5000} registered workloads: agent RSS and BPF map memory"
"$work/regscale" --socket "$sock" -n "${REG_N:-5000}" >"$out/regscale.md"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
{
	bench_header "scripts/bench.sh"
	echo
	echo "| measure | unenforced / baseline | enforced / with ocigate | ratio | target |"
	echo "|---|---|---|---|---|"
	echo "| loopback connect+accept+close in a runc container, median of $ROUNDS rounds (ns) | $off_med | $on_med | $(ratio "$on_med" "$off_med") | <= 1.05 |"
	echo "| fork+exec of /bin/true in a runc container, median of $ROUNDS rounds (ns) | $exec_off | $exec_on | $(ratio "$exec_on" "$exec_off") | <= 1.05 |"
	echo "| connect4 BPF program per run (bpf_stats, ns): unregistered vs registered cgroup | $off_prog_ns | $on_prog_ns | $(ratio "$on_prog_ns" "$off_prog_ns") | |"
	echo "| hook createRuntime round trip p50 (us) vs exec of /bin/true | $true_p50 | $hook_p50 | $(ratio "$hook_p50" "$true_p50") | |"
	echo "| hook createRuntime round trip p99 (us) | | $hook_p99 | | |"
	echo "| runc run busybox true, mean (ms) | $(awk -v v="$runc_off" 'BEGIN{printf "%.1f", v*1000}') | $(awk -v v="$runc_on" 'BEGIN{printf "%.1f", v*1000}') | $(ratio "$runc_on" "$runc_off") | <= 1.10 |"
	echo "| runc run busybox true, createRuntime hook only (--no-poststop), mean (ms) | $(awk -v v="$runc_off" 'BEGIN{printf "%.1f", v*1000}') | $(awk -v v="$runc_create" 'BEGIN{printf "%.1f", v*1000}') | $(ratio "$runc_create" "$runc_off") | <= 1.10 |"
	echo
	cat "$out/rulescale.md"
	echo
	cat "$out/regscale.md"
} | tee "$out/summary.md"

# Event throughput, with an agent of its own.
stop_agent
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

# The last whole run is the reference the README links to.
{
	echo "<!-- Written by make bench (scripts/bench.sh) from its last run; do not edit. -->"
	echo "# ocigate benchmarks"
	echo
	cat "$out/summary.md"
} >docs/bench.md
echo "bench: summary written to docs/bench.md"
