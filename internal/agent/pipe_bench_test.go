package agent

import (
	"context"
	"io"
	"testing"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/profiles"
)

// repeatSource yields one record n times, then reports itself closed.
type repeatSource struct {
	raw bpf.RawEvent
	n   int
}

func (s *repeatSource) ReadInto(raw *bpf.RawEvent) error {
	if s.n == 0 {
		return bpf.ErrClosed
	}
	s.n--
	*raw = s.raw
	return nil
}

func (s *repeatSource) Close() error { return nil }

// The agent's side of a decision, from the decoded record to the line
// written: a dup2 of a process the cache knows (make bench measures the
// whole path, kernel included).
func BenchmarkRunEvents(b *testing.B) {
	h := newFakeHost(&testing.T{})
	a, err := New(Config{Enforcer: newFakeEnforcer(), Resolver: h.resolver(), Catalog: testCatalog(&testing.T{}), ProcRoot: h.proc})
	if err != nil {
		b.Fatal(err)
	}
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		b.Fatal(err)
	}
	cg := r.Identity.CgroupID
	a.onRecord(execRecord(cg, 100, 50, 1000*tick, 200*tick, 100*tick, "/usr/bin/python3.11", "python3", "-c", "x"), at)
	raw := bpf.RawEvent{BootNs: 2000 * tick, CgroupID: cg, WorkloadCgroupID: cg, Pid: 100, Tgid: 100, StartNs: 200 * tick,
		Profile: 1, Point: profiles.PointDup, Action: profiles.ActionPost, Mechanism: "tracepoint", Backend: "tracepoint",
		OldFD: 3, NewFD: 0, Comm: "python3", Path: "/usr/bin/python3.11"}
	w := events.NewWriter(io.Discard)
	b.ReportAllocs()
	b.ResetTimer()
	a.RunEvents(context.Background(), &repeatSource{raw: raw, n: b.N}, w)
	b.StopTimer()
	if w.Written() != uint64(b.N) {
		b.Fatalf("written %d of %d", w.Written(), b.N)
	}
}
