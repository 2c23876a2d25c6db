# Shared helpers of demo.sh and bench.sh: busybox root filesystems, runc
# bundles with ocigate's hooks, and the agent's life cycle.
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

# mk_bundle DIR ROOTFS ID HOOKED(yes|no) SOCKET ARGS...: a runc bundle whose
# container shares the host network (loopback peers) and, when HOOKED,
# runs ocigate-hook at createRuntime and poststop.
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
# events file in DIR (plus ARGS) and waits until it answers. Nothing is
# pinned (--pin-dir ''): the demo and the benchmarks leave no enforcement
# behind when they stop it.
start_agent() {
	local dir=$1 i
	shift
	"$OCIGATE_BIN/ocigate-agentd" run --socket "$dir/agentd.sock" --events-file "$dir/events.jsonl" \
		--profiles "${PROFILES_DIR:-$dir/profiles}" --pin-dir '' "$@" >"$dir/agentd.log" 2>&1 &
	AGENT_PID=$!
	for i in $(seq 100); do
		"$OCIGATE_BIN/ocigate-agentd" status --socket "$dir/agentd.sock" >/dev/null 2>&1 && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "ocigate-agentd did not start; its log:" >&2
	cat "$dir/agentd.log" >&2
	return 1
}

stop_agent() {
	[ -n "${AGENT_PID:-}" ] || return 0
	kill "$AGENT_PID" 2>/dev/null || true
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PID=
}
