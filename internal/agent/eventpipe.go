package agent

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/internal/events"
)

// EventSource yields the kernel's records (*record.Reader).
type EventSource interface {
	// ReadInto blocks for the next record and decodes it into raw,
	// which the caller reuses for the next one.
	ReadInto(raw *record.RawEvent) error
	Close() error
}

// QueueSize bounds the events waiting for the sink; beyond it events are
// dropped and counted, so a slow sink never slows the kernel side.
const QueueSize = 16384

// defaultFlushTimeout bounds how long a stopping agent waits for the sink
// to write what is queued: a sink that blocks (a FIFO nobody reads, a
// hung file system) must not keep the agent from exiting.
const defaultFlushTimeout = 5 * time.Second

// Flusher is an EventSource that can hand over what the kernel has
// queued without waiting for more (*record.Reader): Read then returns
// those records and record.ErrFlushed.
type Flusher interface {
	Flush() error
}

// batchMax bounds the events handed to the sink at once: the reader
// passes what the ring buffer holds in batches, not one by one.
const batchMax = 256

// pending is what *record.Reader tells: more records are ready.
type pending interface{ Pending() bool }

// sinkQueue carries what the events file gets to its writer, at most
// QueueSize events in all: the event pipe's lines, encoded where they
// were made, and single events made elsewhere (emit).
type sinkQueue struct {
	c      chan sinkItem
	queued atomic.Int64
}

// sinkItem is n encoded lines (lines, from linePool), or one event.
type sinkItem struct {
	lines *[]byte
	n     int
	ev    *events.Event
}

// linePool holds the buffers batches of lines are encoded into; the
// writer gives each back once written.
var linePool = sync.Pool{New: func() any { return new([]byte) }}

// room is how many more events the queue takes.
func (q *sinkQueue) room() int { return QueueSize - int(q.queued.Load()) }

// putLines queues n lines; the caller made sure they fit (room).
func (q *sinkQueue) putLines(lines *[]byte, n int) {
	q.queued.Add(int64(n))
	q.c <- sinkItem{lines: lines, n: n} // the channel holds QueueSize items of at least one
}

// tryPut queues one event unless the queue is full or its channel would
// block; it reports whether it did (and so took over the caller's hold).
func (q *sinkQueue) tryPut(ev *events.Event) bool {
	if q.queued.Add(1) > QueueSize {
		q.queued.Add(-1)
		return false
	}
	select {
	case q.c <- sinkItem{ev: ev, n: 1}:
		return true
	default:
		q.queued.Add(-1)
		return false
	}
}

// lineBatch is the lines the reader encoded and has not passed on yet.
type lineBatch struct {
	buf *[]byte
	n   int
	enc events.Encoder // the reader's, kept from batch to batch
}

// RunEvents reads src until it is closed or ctx ends, turns each record
// into a JSON event and writes it to w. When ctx ends it first reads what
// the kernel still holds (a Flusher), then returns once the sink has
// written every queued event, or after the flush timeout, counting what
// was left as dropped.
func (a *Agent) RunEvents(ctx context.Context, src EventSource, w *events.Writer) {
	defer ownThread(ReaderThreadName, a.readerNice, a.log)()
	q := &sinkQueue{c: make(chan sinkItem, QueueSize)}
	a.trust.setSink(q)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.writeEvents(q, w)
	}()
	go a.runHookReports(ctx)
	stop := context.AfterFunc(ctx, func() {
		if f, ok := src.(Flusher); ok && f.Flush() == nil {
			return
		}
		src.Close()
	})
	defer stop()
	more, _ := src.(pending)
	raw := &record.RawEvent{}
	var batch lineBatch
	for {
		err := src.ReadInto(raw)
		if err != nil {
			if errors.Is(err, record.ErrClosed) || errors.Is(err, record.ErrFlushed) || ctx.Err() != nil {
				break
			}
			a.stats.EventErrors.Add(1)
			a.log.Warn("event record dropped", zap.Error(err))
			continue
		}
		if ev := a.handle(raw); ev != nil {
			a.encodeForSink(q, w, &batch, ev)
			ev.Release() // encoded: the file needs its bytes, not ev
		}
		if batch.n > 0 && (batch.n == batchMax || more == nil || !more.Pending()) {
			q.putLines(batch.buf, batch.n)
			batch.buf, batch.n = nil, 0
		}
	}
	if batch.n > 0 {
		q.putLines(batch.buf, batch.n)
	}
	src.Close()
	a.trust.setSink(nil)
	close(q.c)
	select {
	case <-done:
	case <-time.After(a.flushTimeout):
		left := q.queued.Load()
		a.stats.EventsDropped.Add(uint64(left))
		a.log.Error("events sink blocked at stop: queued events not written", zap.Int64("dropped", left),
			zap.Duration("waited", a.flushTimeout))
	}
}

// encodeForSink encodes ev into batch when the events file takes its
// type and the queue has room for it, else drops it and counts. The
// reader encodes what it has just made, its memory still in this CPU's
// cache, and the writer only writes: handing the events themselves to
// the writer's goroutine cost the agent more in cache misses (each
// event's memory moving between the two CPUs, there and back to be
// recycled) than encoding them.
func (a *Agent) encodeForSink(q *sinkQueue, w *events.Writer, batch *lineBatch, ev *events.Event) {
	if !a.sinkTypes.match(ev) {
		return
	}
	if q.room() <= batch.n {
		a.stats.EventsDropped.Add(1)
		return
	}
	if batch.buf == nil {
		batch.buf = linePool.Get().(*[]byte)
		*batch.buf = (*batch.buf)[:0]
	}
	b, err := w.AppendLine(*batch.buf, ev, &batch.enc)
	*batch.buf = b
	if err != nil {
		a.stats.SinkErrors.Store(w.Lost())
		a.encodeWarn.warn(a.log, "event not encoded", err)
		return
	}
	batch.n++
}

// handle acts on one record and returns its event (nil for a record
// that is none), which the caller holds (events.Event.Release).
func (a *Agent) handle(raw *record.RawEvent) *events.Event {
	switch {
	case raw.KillPending:
		a.signalForKernel(raw, unix.SIGKILL)
	case raw.SignalPending && raw.Signal > 0:
		a.signalForKernel(raw, unix.Signal(raw.Signal))
	}
	var ev *events.Event
	if raw.Kind == record.KindDecision {
		ev = a.convert(raw, a.clock.wall(raw.BootNs))
		if !a.afterConvert(raw, ev) {
			ev.Release()
			return nil // rateLimit
		}
	} else {
		ev = a.onRecord(raw, a.clock.wall(raw.BootNs))
		a.stats.ProcessCache.Store(uint64(a.procs.Len()))
		if ev == nil {
			return nil
		}
	}
	a.metrics.event(ev)
	a.hub.Publish(ev) // never blocks; ev is not changed after this
	return ev
}

func (a *Agent) writeEvents(q *sinkQueue, w *events.Writer) {
	var sinkWarn rateLimited
	// The writer counts what it wrote out and what it lost.
	check := func(err error) {
		a.stats.EventsWritten.Store(w.Written())
		a.stats.EventsBytesWritten.Store(w.BytesWritten())
		a.stats.EventsWriteMicros.Store(uint64(w.WriteTime().Microseconds()))
		a.stats.SinkErrors.Store(w.Lost())
		switch {
		case err == nil:
		case errors.Is(err, events.ErrRotate):
			sinkWarn.warn(a.log, "events file not rotated; writing on", err)
		default:
			sinkWarn.warn(a.log, "events not written", err)
		}
	}
	// Lines are written out when 64 KiB are buffered (the writer does
	// it, and writes a large batch at once) or when the queue is empty:
	// a busy pipe makes few large writes, a quiet one writes each batch
	// the reader passed at once, without a timer to wake for.
	for it := range q.c {
		q.queued.Add(-int64(it.n))
		if it.ev != nil {
			check(w.Write(it.ev))
			it.ev.Release() // encoded: the writer keeps bytes, not ev
		} else {
			check(w.WriteLines(*it.lines, it.n))
			linePool.Put(it.lines)
		}
		if len(q.c) == 0 {
			check(w.Flush())
		}
	}
	check(w.Flush())
}

// typeSet is a set of event types; empty, every type.
type typeSet []string

func (s typeSet) match(ev *events.Event) bool {
	if len(s) == 0 {
		return true
	}
	t := ev.Type()
	for _, x := range s {
		if x == t {
			return true
		}
	}
	return false
}

// rateLimited logs a failing sink at most once per interval, so a full
// disk does not turn every event into a log line.
type rateLimited struct {
	last       time.Time
	suppressed int
}

const sinkWarnInterval = 10 * time.Second

func (r *rateLimited) warn(log *zap.Logger, msg string, err error) {
	if now := time.Now(); now.Sub(r.last) >= sinkWarnInterval {
		log.Warn(msg, zap.Error(err), zap.Int("suppressed_since_last", r.suppressed))
		r.last, r.suppressed = now, 0
		return
	}
	r.suppressed++
}

// signalForKernel sends the signal a program could not send itself,
// through a pidfd so a recycled pid is never hit.
func (a *Agent) signalForKernel(raw *record.RawEvent, sig unix.Signal) {
	fd, err := unix.PidfdOpen(int(raw.Tgid), 0)
	if err != nil {
		a.log.Warn("process to kill is gone", zap.Uint32("pid", raw.Pid), zap.Error(err))
		return
	}
	defer unix.Close(fd)
	if path, err := a.resolver.CgroupPath(int(raw.Tgid)); err != nil || !a.inWorkload(path, raw.WorkloadCgroupID) {
		a.log.Warn("process to kill left its workload", zap.Uint32("pid", raw.Pid))
		return
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		a.log.Warn("kill failed", zap.Uint32("pid", raw.Pid), zap.Error(err))
		return
	}
	a.stats.AgentKills.Add(1)
}

func (a *Agent) inWorkload(path string, workloadCgroup uint64) bool {
	w, ok := a.reg.ByCgroup(workloadCgroup)
	if !ok {
		return false
	}
	return path == w.CgroupPath || len(path) > len(w.CgroupPath) && path[:len(w.CgroupPath)+1] == w.CgroupPath+"/"
}

// bootClock converts CLOCK_BOOTTIME stamps to wall-clock time.
type bootClock struct{ offset time.Duration }

func newBootClock() bootClock {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return bootClock{offset: time.Duration(time.Now().UnixNano() - ts.Nano())}
}

func (c bootClock) wall(bootNs uint64) time.Time {
	return time.Unix(0, int64(bootNs)+int64(c.offset)).UTC()
}
