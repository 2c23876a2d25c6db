package agent

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/internal/eventhub"
	"github.com/ocigate/ocigate/internal/events"
)

// quietRaw is a denied connect whose process has no parent to look up.
func quietRaw(cg uint64, i int) *record.RawEvent {
	r := connectRaw(cg)
	r.Ppid, r.BootNs = 0, uint64(i+1)
	return r
}

// blockingOut is a sink that never returns from Write: a FIFO nobody
// reads, a hung file system.
type blockingOut struct {
	release chan struct{}
}

func (b *blockingOut) Write(p []byte) (int, error) {
	<-b.release
	return len(p), nil
}

// A sink that blocks forever never stops the kernel-event reader: it
// reads on, the queue fills, the rest is dropped and counted, and a stop
// returns after the flush timeout with what was left counted too.
func TestBlockedSinkNeverBlocksTheReader(t *testing.T) {
	a, cg := convertFixture(t)
	a.flushTimeout = 300 * time.Millisecond
	n := QueueSize + 500
	items := make([]any, n)
	for i := range items {
		items[i] = quietRaw(cg, i)
	}
	src := newFakeSource(items...)
	src.drain = true
	out := &blockingOut{release: make(chan struct{})}
	defer close(out.release)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.RunEvents(context.Background(), src, events.NewWriter(out))
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("RunEvents did not return with a blocked sink")
	}
	t.Logf("%d events through a blocked sink in %v; stats %v", n, time.Since(start), a.Stats().Map())
	src.mu.Lock()
	left := len(src.items)
	src.mu.Unlock()
	if left != 0 {
		t.Fatalf("the reader stopped with %d records unread", left)
	}
	st := a.Stats()
	// The writer holds at most a buffer's worth; everything else is lost
	// and counted: first the overflow, then the queue at stop.
	if d := st.EventsDropped.Load(); d < uint64(n-200) || d > uint64(n) || st.EventsWritten.Load() != 0 {
		t.Fatalf("dropped %d of %d, written %d", d, n, st.EventsWritten.Load())
	}
	recent, _, err := a.Events().Subscribe(eventhub.Filter{}, -1, false)
	if err != nil || len(recent) == 0 || recent[len(recent)-1].Time != recent[0].Time.Add(time.Duration(len(recent)-1)) {
		t.Fatalf("followers' recent events: %d, %v: the hub must get every event whatever the sink does", len(recent), err)
	}
}

// flushSource holds "kernel-buffered" records that only Flush hands out,
// as the ring buffer does after a stop.
type flushSource struct {
	*fakeSource
	pending []any
	once    sync.Once
}

func (s *flushSource) Flush() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.items = append(s.items, s.pending...)
		s.items = append(s.items, record.ErrFlushed)
		s.mu.Unlock()
		s.fakeSource.Close() // wakes a Read waiting for more
	})
	return nil
}

// ReadInto returns the flushed records and then ErrFlushed (an error
// item); a read that was waiting when Flush woke it reads them too.
func (s *flushSource) ReadInto(raw *record.RawEvent) error {
	for {
		err := s.fakeSource.ReadInto(raw)
		if errors.Is(err, record.ErrClosed) {
			s.mu.Lock()
			more := len(s.items) > 0
			s.mu.Unlock()
			if more {
				continue
			}
		}
		return err
	}
}

// slowOut is a sink that takes its time.
type slowOut struct{ f *os.File }

func (s slowOut) Write(p []byte) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return s.f.Write(p)
}

// A stop (SIGTERM) writes out everything: the events still queued for a
// slow sink and those the kernel still holds.
func TestStopFlushesEvents(t *testing.T) {
	a, cg := convertFixture(t)
	const queued, inKernel = 3000, 200
	items := make([]any, queued)
	for i := range items {
		items[i] = quietRaw(cg, i)
	}
	src := &flushSource{fakeSource: newFakeSource(items...)}
	for i := 0; i < inKernel; i++ {
		src.pending = append(src.pending, quietRaw(cg, queued+i))
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.RunEvents(ctx, src, events.NewWriter(slowOut{f}))
	}()
	for { // every record read, most of them still queued for the sink
		src.mu.Lock()
		left := len(src.items)
		src.mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("RunEvents did not return after the stop")
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines++
	}
	st := a.Stats().Map()
	if lines != queued+inKernel || st["events_written"] != queued+inKernel || st["events_dropped_queue"] != 0 {
		t.Fatalf("%d lines in the file, stats %v; want %d written", lines, st, queued+inKernel)
	}
}
