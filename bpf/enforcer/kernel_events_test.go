package enforcer

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/profiles"
)

// nextEvent returns the next event for point after *seen, waiting for it.
func nextEvent(t *testing.T, seen *int, point profiles.Point) *record.RawEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		evs := shared.log.since(*seen)
		for i, ev := range evs {
			if ev.Kind == record.KindDecision && ev.Point == point {
				*seen += i + 1
				return ev
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s event within 5s", point)
	return nil
}

// eventLog collects everything the kernel reports.
type eventLog struct {
	mu   sync.Mutex
	evs  []*record.RawEvent
	rd   *record.Reader
	done chan struct{}
}

func startEventLog(e *Enforcer) (*eventLog, error) {
	rd, err := e.NewEventReader()
	if err != nil {
		return nil, err
	}
	l := &eventLog{rd: rd, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			ev, err := rd.Read()
			if errors.Is(err, record.ErrClosed) {
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "event log: %v\n", err)
				continue
			}
			l.mu.Lock()
			l.evs = append(l.evs, ev)
			l.mu.Unlock()
		}
	}()
	return l, nil
}

func (l *eventLog) stop() {
	l.rd.Close()
	<-l.done
}

func (l *eventLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.evs)
}

// since returns the events after the first n.
func (l *eventLog) since(n int) []*record.RawEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs[n:])
}

// eventView is one test's part of the log: its cgroup's events from
// its start on.
type eventView struct {
	l    *eventLog
	from int
	cg   uint64
}

// matching returns the view's decision records that match accepts.
func (v eventView) matching(match func(*record.RawEvent) bool) []*record.RawEvent {
	return v.records(record.KindDecision, match)
}

// records returns the view's records of kind that match accepts.
func (v eventView) records(kind record.Kind, match func(*record.RawEvent) bool) []*record.RawEvent {
	var out []*record.RawEvent
	for _, ev := range v.l.since(v.from) {
		if ev.Kind == kind && ev.WorkloadCgroupID == v.cg && match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// wait returns the events match accepts once there are n of them, and
// after a short settling time checks that no more come.
func (v eventView) wait(t *testing.T, n int, match func(*record.RawEvent) bool) []*record.RawEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(v.matching(match)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events within 5s; this test's events: %s", len(v.matching(match)), n,
				dumpEvents(v.matching(func(*record.RawEvent) bool { return true })))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	got := v.matching(match)
	if len(got) != n {
		t.Fatalf("%d events, want %d: %s", len(got), n, dumpEvents(got))
	}
	return got
}

func dumpEvents(evs []*record.RawEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s pid %d sel %d group %d action %v enforced %v monitor %v daddr %v:%d saddr %v:%d path %q",
			ev.Point, ev.Tgid, ev.Selector, ev.Group, ev.Action, ev.Enforced, ev.Monitor, ev.Daddr, ev.Dport, ev.Saddr, ev.Sport, ev.Path)
	}
	return b.String()
}

// of matches the events of one process at one point.
func of(pid int, point profiles.Point) func(*record.RawEvent) bool {
	return func(ev *record.RawEvent) bool { return ev.Tgid == uint32(pid) && ev.Point == point }
}
