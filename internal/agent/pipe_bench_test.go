package agent

import (
	"context"
	"io"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/profiles"
)

// benchAgent is an agent with container c1 and its process 100 (python3)
// known, and a dup2 decision of that process as the kernel reports it.
func benchAgent(b *testing.B) (*Agent, record.RawEvent) {
	h := newFakeHost(b)
	a, err := New(Config{Enforcer: newFakeEnforcer(), Resolver: h.resolver(), Catalog: testCatalog(b), ProcRoot: h.proc})
	if err != nil {
		b.Fatal(err)
	}
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		b.Fatal(err)
	}
	cg := r.Identity.CgroupID
	a.onRecord(execRecord(cg, 100, 50, 1000*tick, 200*tick, 100*tick, "/usr/bin/python3.11", "python3", "-c", "x"), at)
	return a, record.RawEvent{BootNs: 2000 * tick, CgroupID: cg, WorkloadCgroupID: cg, Pid: 100, Tgid: 100, StartNs: 200 * tick,
		Profile: 1, Point: profiles.PointDup, Action: profiles.ActionPost, Mechanism: "tracepoint", Backend: "tracepoint",
		OldFD: 3, NewFD: 0, Comm: "python3", Path: "/usr/bin/python3.11"}
}

// The event reader's share of a decision: the record to a published
// event (process from the cache, metrics, the hub). make bench measures
// the whole path, kernel included.
func BenchmarkHandleDecision(b *testing.B) {
	a, raw := benchAgent(b)
	b.ReportAllocs()
	for b.Loop() {
		r := raw
		ev := a.handle(&r)
		if ev == nil {
			b.Fatal("no event")
		}
		ev.Release() // written: the sink's release
	}
}

// The sink's share: one event encoded and buffered (written out per
// 64 KiB, here to io.Discard).
func BenchmarkWriteEvent(b *testing.B) {
	a, raw := benchAgent(b)
	ev := a.handle(&raw)
	w := events.NewWriter(io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// The event reader's share of a fork+exec+exit in a workload: the clone,
// exec and exit records of a child of process 100 that exits before the
// agent reads /proc (as /bin/true does), to its two events, encoded.
func BenchmarkForkExecExit(b *testing.B) {
	a, raw := benchAgent(b)
	cg := raw.WorkloadCgroupID
	w := events.NewWriter(io.Discard)
	b.ReportAllocs()
	tgid := uint32(5000)
	for b.Loop() {
		tgid++
		start := uint64(tgid) * tick
		a.onRecord(&record.RawEvent{Kind: record.KindClone, BootNs: start, CgroupID: cg, WorkloadCgroupID: cg, Pid: tgid, Tgid: tgid,
			Ppid: 100, StartNs: start, ParentStartNs: 200 * tick, Comm: "python3"}, at)
		x := execRecord(cg, tgid, 100, start+1, start, 200*tick, "/bin/true", "true")
		for _, ev := range []*events.Event{a.onRecord(x, at),
			a.onRecord(&record.RawEvent{Kind: record.KindExit, BootNs: start + 2, CgroupID: cg, WorkloadCgroupID: cg, Pid: tgid, Tgid: tgid,
				Ppid: 100, StartNs: start, Comm: "true"}, at)} {
			if ev == nil {
				b.Fatal("no event")
			}
			if err := w.Write(ev); err != nil {
				b.Fatal(err)
			}
			ev.Release() // written
		}
	}
}

// The heap a process cache entry costs: 10 000 children of process 100,
// each exec'd (python3 -c x, as a shell's child would be), then exited.
func BenchmarkProcessCacheEntry(b *testing.B) {
	const n = 10000
	for b.Loop() {
		a, raw := benchAgent(b)
		cg := raw.WorkloadCgroupID
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := uint32(0); i < n; i++ {
			tgid := 5000 + i
			start := uint64(tgid) * tick
			a.onRecord(&record.RawEvent{Kind: record.KindClone, BootNs: 2000 * tick, CgroupID: cg, WorkloadCgroupID: cg, Pid: tgid, Tgid: tgid,
				Ppid: 100, StartNs: start, ParentStartNs: 200 * tick, Comm: "python3"}, at)
			a.onRecord(execRecord(cg, tgid, 100, 2000*tick, start, 200*tick, "/usr/bin/python3.11", "python3", "-c", "print(1)"), at)
			a.onRecord(&record.RawEvent{Kind: record.KindExit, BootNs: 2000 * tick, CgroupID: cg, WorkloadCgroupID: cg, Pid: tgid, Tgid: tgid,
				Ppid: 100, StartNs: start, Comm: "python3"}, at)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if a.procs.Len() < n {
			b.Fatalf("%d entries cached, want %d", a.procs.Len(), n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/entry")
		runtime.KeepAlive(a)
	}
}

// benchSource yields n copies of one record, in ring-buffer batches of
// 128 (Pending), then reports itself closed.
type benchSource struct {
	raw  record.RawEvent
	n, i int
}

func (s *benchSource) ReadInto(raw *record.RawEvent) error {
	if s.i == s.n {
		return record.ErrClosed
	}
	s.i++
	*raw = s.raw
	return nil
}

func (s *benchSource) Pending() bool { return s.i%128 != 0 && s.i < s.n }
func (s *benchSource) Close() error  { return nil }

// The whole event pipe, both its goroutines: decisions from the reader
// to JSON lines written out (to io.Discard: the file system's copy is
// not the agent's code), in CPU time per event (getrusage, every
// thread), which is what the pipe costs next to the kernel's producers
// on two CPUs.
func BenchmarkEventPipe(b *testing.B) {
	a, raw := benchAgent(b)
	var before, after unix.Rusage
	b.ReportAllocs()
	b.ResetTimer()
	_ = unix.Getrusage(unix.RUSAGE_SELF, &before)
	a.RunEvents(context.Background(), &benchSource{raw: raw, n: b.N}, events.NewWriter(io.Discard))
	_ = unix.Getrusage(unix.RUSAGE_SELF, &after)
	b.StopTimer()
	if got := a.stats.EventsWritten.Load() + a.stats.EventsDropped.Load(); got != uint64(b.N) {
		b.Fatalf("%d events written or dropped of %d", got, b.N)
	}
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
	b.ReportMetric(float64(a.stats.EventsDropped.Load())/float64(b.N), "dropped/event")
}
