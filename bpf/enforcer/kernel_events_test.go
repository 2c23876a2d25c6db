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
	"github.com/ocigate/ocigate/internal/testenv"
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

// A reader of a quiet ring stops polling and sleeps until the programs
// wake it (reader_sleeps): its first record must then arrive at once,
// not at its next look a SleepLook later. Three rounds, each from
// asleep: a reader that were never woken would make all three within
// 100 ms by chance about once in a thousand runs.
func TestSleepingReaderWokenByRecord(t *testing.T) {
	testenv.NeedTools(t, "busybox")
	e, root := loadForTest(t)
	dir, cg := testCgroup(t, root)
	if err := e.SetWorkload(cg, 1, profiles.ModeMonitor, [profiles.NumPoints]uint32{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.RemoveWorkload(cg) })
	for round := 1; round <= 3; round++ {
		waitReaderSleeps(t, e)
		seen := shared.log.len()
		pid, _ := connectFrom(t, dir)
		start := time.Now()
		view := eventView{l: shared.log, from: seen, cg: cg}
		for len(view.matching(of(pid, profiles.PointConnect))) == 0 {
			if time.Since(start) > 100*time.Millisecond {
				t.Fatalf("round %d: the connect record of a sleeping reader not read within 100 ms (it looks every %v)",
					round, record.SleepLook)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// waitReaderSleeps waits until the reader has set reader_sleeps.
func waitReaderSleeps(t *testing.T, e *Enforcer) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var v uint32
		if err := e.maps.ReaderSleeps.Lookup(uint32(0), &v); err != nil {
			t.Fatal(err)
		}
		if v == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reader did not go to sleep within 5 s of quiet (looks %d in a row)", record.SleepAfterLooks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
