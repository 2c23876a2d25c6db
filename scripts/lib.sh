# Shared helpers of demo.sh and the bench scripts: busybox root
# filesystems, runc bundles with ocigate's hooks, the agent's life cycle,
# and what results tables need.
# shellcheck shell=bash

OCIGATE_BIN=${OCIGATE_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bin}

# mk_rootfs DIR [HOSTFILE:ROOTFSPATH ...]: a busybox-static root filesystem.
mk_rootfs() {
	local dir=$1 a
	shift
	mkdir -p "$dir"/{bin,proc,dev,sys,tmp,etc}
	cp /bin/busybox "$dir/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$dir/bin/$a" ] || ln -s busybox "$dir/bin/$a"
	done
	echo "root:x:0:0:root:/:/bin/sh" >"$dir/etc/passwd"
	for a in "$@"; do
		cp "${a%%:*}" "$dir/${a#*:}"
	done
}

# mk_bundle DIR ROOTFS ID HOOKED(yes|no|create|hook:PATH|hooks:PATH) SOCKET
# ARGS...: a runc bundle whose container shares the host network (loopback
# peers) and runs ocigate-hook at createRuntime and poststop (yes), at
# createRuntime only (create), or PATH as its only (createRuntime) hook
# or as both: the benchmarks' floors.
mk_bundle() {
	local dir=$1 rootfs=$2 id=$3 hooked=$4 socket=$5
	shift 5
	mkdir -p "$dir"
	local args hooks='{}' annotations=${ANNOTATIONS:-'{}'}
	args=$(printf '%s\n' "$@" | jq -R . | jq -s .)
	if [ "$hooked" = yes ]; then
		hooks=$(jq -n --arg p "$OCIGATE_BIN/ocigate-hook" --arg s "$socket" '{
			createRuntime: [{path: $p, args: ["ocigate-hook", "--socket", $s, "createRuntime"]}],
			poststop: [{path: $p, args: ["ocigate-hook", "--socket", $s, "poststop"]}]}')
	elif [ "$hooked" = create ]; then # --no-poststop: the agent drops stopped containers
		hooks=$(jq -n --arg p "$OCIGATE_BIN/ocigate-hook" --arg s "$socket" '{
			createRuntime: [{path: $p, args: ["ocigate-hook", "--socket", $s, "createRuntime"]}]}')
	elif [ "${hooked#hook:}" != "$hooked" ]; then
		hooks=$(jq -n --arg p "${hooked#hook:}" '{createRuntime: [{path: $p}]}')
	elif [ "${hooked#hooks:}" != "$hooked" ]; then
		hooks=$(jq -n --arg p "${hooked#hooks:}" '{createRuntime: [{path: $p}], poststop: [{path: $p}]}')
	fi
	(cd "$dir" && rm -f config.json && runc spec)
	jq --arg root "$rootfs" --argjson args "$args" --argjson hooks "$hooks" --arg cg "/ocigate-demo/$id" \
		--argjson ann "$annotations" '
		.process.terminal = false | .process.args = $args | .root = {path: $root, readonly: true}
		| .hostname = "demo"
		| .linux.namespaces |= map(select(.type != "network"))
		| .mounts |= map(select(.type != "sysfs" and .type != "cgroup"))
		| .linux.cgroupsPath = $cg | .hooks = $hooks | .annotations = $ann' "$dir/config.json" >"$dir/config.json.new"
	mv "$dir/config.json.new" "$dir/config.json"
}

# run_container BUNDLE ID SECONDS: runc run, bounded, always deleted after.
run_container() {
	local bundle=$1 id=$2 secs=${3:-20} rc=0
	timeout -k 5 "$secs" runc run --bundle "$bundle" "$id" </dev/null || rc=$?
	runc delete -f "$id" >/dev/null 2>&1 || true
	return $rc
}

# start_agent DIR [ARGS...]: starts ocigate-agentd with its socket and
# events file in DIR (plus ARGS, which come last and so override these,
# e.g. --pin-dir) and waits until it answers status (`status --wait`: it
# answers once its programs are attached and its profiles loaded), or
# fails at once with its log if it exits first. Nothing is pinned
# (--pin-dir ''): the demo and the benchmarks leave no enforcement behind
# when they stop it. AGENT_READY_WAIT bounds the wait (default 60s).
start_agent() {
	local dir=$1 waiter done_pid=
	shift
	"$OCIGATE_BIN/ocigate-agentd" run --socket "$dir/agentd.sock" --events-file "$dir/events.jsonl" \
		--profiles "${PROFILES_DIR:-$dir/profiles}" --pin-dir '' "$@" >"$dir/agentd.log" 2>&1 &
	AGENT_PID=$!
	"$OCIGATE_BIN/ocigate-agentd" status --socket "$dir/agentd.sock" --wait "${AGENT_READY_WAIT:-60s}" --summary \
		>/dev/null 2>"$dir/status-wait.err" &
	waiter=$!
	wait -n -p done_pid "$waiter" "$AGENT_PID" && [ "$done_pid" = "$waiter" ] && return 0
	if [ "$done_pid" = "$AGENT_PID" ]; then
		kill "$waiter" 2>/dev/null || true
		wait "$waiter" 2>/dev/null || true
		echo "ocigate-agentd exited at start; its log:" >&2
		AGENT_PID=
	else
		cat "$dir/status-wait.err" >&2
		echo "ocigate-agentd did not answer; its log:" >&2
	fi
	cat "$dir/agentd.log" >&2
	return 1
}

stop_agent() {
	[ -n "${AGENT_PID:-}" ] || return 0
	kill "$AGENT_PID" 2>/dev/null || true
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PID=
}

# median: the median of the numbers on stdin, one a line.
# prog_stats PATTERN: "MECHANISM[PROGRAM] run_time_ns run_cnt" of each of
# the agent's programs whose mechanism matches PATTERN (an awk regex),
# from its metrics at METRICS_ADDR: its own programs, not another agent's
# of the same name (bpftool lists every loaded one), each program apart
# where several share a mechanism. Counted while
# kernel.bpf_stats_enabled=1.
prog_stats() {
	curl -sf "http://$METRICS_ADDR/metrics" | awk -v re="$1" '
		/^ocigate_bpf_program_run(s_total|_seconds_total)\{/ {
			match($0, /mechanism="[^"]*"/); m = substr($0, RSTART + 11, RLENGTH - 12)
			match($0, /program="[^"]*"/); p = m "[" substr($0, RSTART + 9, RLENGTH - 10) "]"
			if (m !~ re) next
			if ($1 ~ /^ocigate_bpf_program_runs_total/) c[p] = $2; else t[p] = $2 * 1e9 }
		END { for (p in c) printf "%s %.0f %.0f\n", p, t[p], c[p] }'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# bench_header COMMAND: the line that heads the results of a run: the
# command that made them, when, and on which kernel and machine.
bench_header() {
	local cpu mem
	cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	mem=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
	echo "\`$1\`, $(date -u +%Y-%m-%dT%H:%M:%SZ), kernel $(uname -r) $(uname -m), $(nproc) CPUs (${cpu:-unknown}), $mem"
}
