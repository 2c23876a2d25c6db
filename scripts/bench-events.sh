#!/usr/bin/env bash
# Event throughput, kernel to JSON file: test/bench/eventstorm makes dup3
# events (one per call, a Post selector of the bench-events profile) inside
# a registered monitor-mode workload (run-job), at increasing offered
# rates for EVENT_SECONDS each. EVENT_STEPS lists them as RATE/THREADS
# (RATE 0: as fast as the generator threads go). For every step: the events made, the events
# the agent wrote to its events file, how fast, and every loss counter
# (kernel ring buffer reservation failures, the agent's queue, the sink),
# and the CPU each event cost the generators (their own rusage: the
# syscall and the BPF program) and the agent: on two CPUs their sum
# bounds the rate, which the results say; and so does the file system,
# whose rate for the agent's writes is measured before the steps and,
# as it varies (on a VM, from one GiB to the next), during each step:
# the bytes the agent wrote over the time its write calls took, and
# that time's share of the step. The agent's garbage collections a
# second show when its heap nears its memory limit. The reader's thread
# (ocigate-events) shows its time on a CPU and its time runnable but
# waiting for one (schedstat): the kernel loses records when the reader
# waits longer than the ring buffer holds records for.
# The agent writes process_kprobe events only (--events-types), so the
# written count is the generator's events alone.
# At the steps of 300 000 events/s and more, the agent's CPU profile
# says where its time goes: reading the ring buffer, decoding records,
# turning them into events (the process cache lookup among it), encoding
# JSON, writing the file, and the garbage collector.
# Results go to bench-results/events.md (and stdout).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[ "$(id -u)" = 0 ] || { echo "bench-events: run as root" >&2; exit 1; }
# The 500 000 step's generators make 499 9xx events/s (their pace is
# kept in batches of 64, and the time includes their start and end), so
# a zero-loss step over the target is one above it: 525 000 and up.
STEPS=${EVENT_STEPS:-"100000/1 200000/1 250000/1 0/1 300000/2 400000/2 500000/2 525000/2 550000/2 600000/2 0/2"}
PPROF_ADDR=${EVENTS_PPROF_ADDR:-127.0.0.1:16062}
SECONDS_PER=${EVENT_SECONDS:-5}
out=bench-results
mkdir -p "$out"
work=$(mktemp -d /tmp/ocigate-bench-events.XXXXXX)
cleanup() {
	stop_agent
	rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$work/eventstorm" ./test/bench/eventstorm
mkdir -p "$work/profiles"
cp scripts/bench-profiles/bench-events.yaml "$work/profiles/"
sock=$work/agentd.sock
PROFILES_DIR=$work/profiles start_agent "$work" --events-max-size 512MiB --events-max-backups 1 --events-types process_kprobe \
	--pprof-addr "$PPROF_ADDR"

# profile_shares PROFILE SECONDS: the agent's CPU in each part of the
# event path, in % of one CPU (cumulative time of the part's function).
profile_shares() {
	go tool pprof -top -cum -nodecount=100000 "$OCIGATE_BIN/ocigate-agentd" "$1" 2>/dev/null | awk -v secs="$2" '
		function sec(v) { if (v ~ /ms$/) return v / 1000; if (v ~ /us$/) return v / 1e6; return v + 0 }
		{ f = $NF; c = sec($4) }
		f == "github.com/ocigate/ocigate/bpf/record.(*ring).next" || f == "github.com/ocigate/ocigate/bpf/record.(*ring).wait" { part["ring read"] += c }
		f == "github.com/ocigate/ocigate/bpf/record.decodeInto" { part["decode"] += c }
		f == "github.com/ocigate/ocigate/internal/agent.(*Agent).handle" { part["to event"] += c }
		f == "github.com/ocigate/ocigate/internal/agent.(*Agent).processFor" { part["(process cache)"] += c }
		f == "github.com/ocigate/ocigate/internal/events.(*Encoder).AppendJSON" { part["encode"] += c }
		f == "github.com/ocigate/ocigate/internal/events.(*Writer).writeOutLocked" { part["write"] += c }
		f == "runtime.gcBgMarkWorker" { part["GC"] += c }
		END { n = split("ring read,decode,to event,(process cache),encode,write,GC", order, ",")
			for (i = 1; i <= n; i++) printf "%s %.0f%%; ", order[i], 100 * part[order[i]] / secs }'
}

# counters: events_written kernel_events_lost events_dropped_queue
# events_sink_errors events_bytes_written events_write_us
counters() {
	"$OCIGATE_BIN/ocigate-agentd" status --socket "$sock" -o json |
		jq -r '.counters | "\(.events_written) \(.kernel_events_lost) \(.events_dropped_queue) \(.events_sink_errors) \(.events_bytes_written) \(.events_write_us)"'
}
# gc_cycles: the agent's garbage collections so far (runtime.MemStats).
gc_cycles() { curl -sf "http://$PPROF_ADDR/debug/pprof/heap?debug=1" | awk '$2 == "NumGC" {print $4}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"; }
# reader_sched: the agent's record reader's thread (named ocigate-events)
# time on a CPU and time runnable but waiting for one, in ns (schedstat).
reader_sched() {
	local t
	for t in /proc/"$AGENT_PID"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = ocigate-events ] && { cut -d' ' -f1-2 "$t/schedstat"; return; }
	done
	echo "0 0"
}
now() { date +%s.%N; }

{
	echo "| offered (events/s) | threads | made | made/s | written | written/s | kernel lost | queue dropped | sink lost | agent CPU | generators us/event | agent us/event read | agent GCs/s | sink MB/s in its writes | writer in its writes | reader on a CPU | reader waiting for a CPU | zero loss |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} >"$work/table.md"
first_loss=""
best=0 best_at=""
dd0=$(now)
dd if=/dev/zero of="$work/sink-ceiling" bs=64K count=16384 status=none
dd1=$(now)
rm -f "$work/sink-ceiling"
load=$(cut -d' ' -f1-3 /proc/loadavg)
for step in $STEPS; do
	rate=${step%/*} threads=${step#*/}
	read -r w0 k0 q0 s0 b0 u0 < <(counters)
	g0=$(gc_cycles)
	read -r r0 d0 < <(reader_sched)
	c0=$(cpu_ticks)
	t0=$(now)
	prof_pid=
	if [ "$rate" -ge 300000 ]; then
		curl -sf -o "$work/cpu-$rate.pprof" "http://$PPROF_ADDR/debug/pprof/profile?seconds=$((SECONDS_PER - 1))" &
		prof_pid=$!
	fi
	res=$("$OCIGATE_BIN/ocigate-agentd" run-job --socket "$sock" --profile bench-events -- \
		"$work/eventstorm" -rate "$rate" -threads "$threads" -duration "${SECONDS_PER}s" 2>>"$work/runjob.log")
	made=$(awk '$1=="generated"{print $2}' <<<"$res")
	secs=$(awk '$1=="seconds"{print $2}' <<<"$res")
	gcpu=$(awk '$1=="cpu_seconds"{print $2}' <<<"$res")
	# Wait until the agent has written them all, or stops writing.
	last=-1 stable=0
	while :; do
		read -r w k q s b u < <(counters)
		t1=$(now)
		[ $((w - w0)) -ge "$made" ] && break
		if [ "$w" = "$last" ]; then stable=$((stable + 1)); else stable=0; fi
		[ "$stable" -ge 10 ] && break
		last=$w
		sleep 0.05
	done
	c1=$(cpu_ticks)
	g1=$(gc_cycles)
	read -r r1 d1 < <(reader_sched)
	if [ -n "$prof_pid" ] && wait "$prof_pid"; then
		echo "| $rate | $threads | $(profile_shares "$work/cpu-$rate.pprof" $((SECONDS_PER - 1))) |" >>"$work/profiles.md"
	fi
	written=$((w - w0)) klost=$((k - k0)) qdrop=$((q - q0)) slost=$((s - s0))
	# written/s over the time from the job's start to the last line written
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')
	ok=no
	if [ "$klost" = 0 ] && [ "$qdrop" = 0 ] && [ "$slost" = 0 ] && [ "$written" = "$made" ]; then ok=yes; fi
	offered=$rate
	[ "$rate" = 0 ] && offered="max"
	awk -v o="$offered" -v th="$threads" -v m="$made" -v s="$secs" -v w="$written" -v wall="$wall" -v k="$klost" -v q="$qdrop" \
		-v sl="$slost" -v c=$((c1 - c0)) -v ok="$ok" -v g="${gcpu:-0}" -v gc=$((g1 - g0)) -v by=$((b - b0)) -v us=$((u - u0)) \
		-v ron=$((r1 - r0)) -v rwait=$((d1 - d0)) 'BEGIN {
		printf "| %s | %d | %d | %.0f | %d | %.0f | %d | %d | %d | %.0f%% | %.2f | %.2f | %.0f | %.0f | %.0f%% | %.0f%% | %.0f%% | %s |\n", o, th, m, m / s, w, w / wall, k, q, sl,
			100 * c / 100 / wall, 1e6 * g / (m ? m : 1), 1e6 * c / 100 / (w + q ? w + q : 1), gc / wall, us ? by / us : 0, 100 * us / 1e6 / wall,
			100 * ron / 1e9 / wall, 100 * rwait / 1e9 / wall, ok
	}' >>"$work/table.md"
	# Per-event CPU of the fastest step: the floor below.
	if [ "$rate" = 0 ] && [ "$written" -gt 0 ]; then
		floor=$(awk -v g="${gcpu:-0}" -v m="$made" -v c=$((c1 - c0)) -v w=$((written + qdrop)) -v th="$threads" 'BEGIN {
			gu = 1e6 * g / m; au = 1e6 * c / 100 / w
			printf "at the fastest step with %d thread(s), making an event cost the generators %.2f us of CPU (the syscall and the BPF program included) and reading, converting and writing it (or dropping it at a full queue) cost the agent %.2f us: together %.2f us, so two CPUs, both busy and nothing else running, make and write at most %.0f events/s", th, gu, au, gu + au, 2e6 / (gu + au) }')
	fi
	if [ "$ok" = yes ]; then
		best_new=$(awk -v a="$best" -v m="$made" -v s="$secs" 'BEGIN{r = m / s; print (r > a) ? int(r) : a}')
		[ "$best_new" != "$best" ] && best_at="offered $offered, $threads thread(s)"
		best=$best_new
	elif [ -z "$first_loss" ]; then
		first_loss="$offered ($threads thread(s), $(awk -v m="$made" -v s="$secs" 'BEGIN{printf "%.0f", m / s}') made/s)"
	fi
	echo "bench-events: offered $offered, $threads thread(s): made $made in ${secs}s, written $written, lost kernel $klost queue $qdrop sink $slost" >&2
done
# The sink's own ceiling (its rate measured before the steps): the file
# system taking 64 KiB writes into the events file's directory, buffered
# as the agent writes (no sync), per this run's lines.
line_b=$(head -n 1000 "$work/events.jsonl" 2>/dev/null | wc -c)
line_b=$((line_b / 1000))
sink_row=""
if [ "$line_b" -gt 0 ]; then
	sink_row=$(awk -v a="$dd0" -v b="$dd1" -v l="$line_b" 'BEGIN { r = 1024 * 1048576 / (b - a)
		printf "The file system took 1 GiB of 64 KiB writes (dd, the agent'"'"'s way: buffered, into the events file'"'"'s directory) at %.0f MB/s, which is %.0f events/s of this run'"'"'s %d-byte lines: the sink cannot write faster, whatever the agent does.", r / 1e6, r / l, l }')
fi
{
	bench_header "scripts/bench-events.sh"
	echo
	cat "$work/table.md"
	echo
	met="not met"
	[ "$best" -ge 500000 ] && met="met"
	echo "Highest rate with zero loss: $best events/s made and written (${best_at:-no step}); loss first at offered ${first_loss:-none} events/s (${SECONDS_PER} s per step; load average before: $load); target >= 500000 events/s with zero loss: $met."
	if [ -n "${floor:-}" ]; then
		echo
		echo "The CPU an event costs, both sides (generators: their getrusage; agent: /proc, over the step): $floor."
	fi
	if [ -n "$sink_row" ]; then
		echo
		echo "$sink_row"
	fi
	if [ -s "$work/profiles.md" ]; then
		echo
		echo "Where the agent's time goes (CPU profile over the step, % of one CPU; the process cache lookup is part of \"to event\"):"
		echo
		echo "| offered (events/s) | threads | ring read; decode; to event; (process cache); encode; write; GC |"
		echo "|---|---|---|"
		cat "$work/profiles.md"
	fi
} | tee "$out/events.md"
