package agent

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/internal/events"
)

// EventSource yields the kernel's records (*bpf.EventReader).
type EventSource interface {
	// ReadInto blocks for the next record and decodes it into raw,
	// which the caller reuses for the next one.
	ReadInto(raw *bpf.RawEvent) error
	Close() error
}

// QueueSize bounds the events waiting for the sink; beyond it events are
// dropped and counted, so a slow sink never slows the kernel side.
const QueueSize = 16384

// RunEvents reads src until it is closed or ctx ends, turns each record
// into a JSON event and writes it to w. It returns after flushing.
func (a *Agent) RunEvents(ctx context.Context, src EventSource, w *events.Writer) {
	queue := make(chan *events.Event, QueueSize)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.writeEvents(queue, w)
	}()
	stop := context.AfterFunc(ctx, func() { src.Close() })
	defer stop()
	raw := &bpf.RawEvent{}
	for {
		err := src.ReadInto(raw)
		if err != nil {
			if errors.Is(err, bpf.ErrClosed) || ctx.Err() != nil {
				break
			}
			a.stats.EventErrors.Add(1)
			a.log.Warn("event record dropped", zap.Error(err))
			continue
		}
		switch {
		case raw.KillPending:
			a.signalForKernel(raw, unix.SIGKILL)
		case raw.SignalPending && raw.Signal > 0:
			a.signalForKernel(raw, unix.Signal(raw.Signal))
		}
		var ev *events.Event
		if raw.Kind == bpf.KindDecision {
			ev = a.convert(raw, a.clock.wall(raw.BootNs))
		} else {
			ev = a.onRecord(raw, a.clock.wall(raw.BootNs))
			a.stats.ProcessCache.Store(uint64(a.procs.Len()))
			if ev == nil {
				continue
			}
		}
		a.metrics.event(ev)
		a.hub.Publish(ev) // never blocks; ev is not changed after this
		select {
		case queue <- ev:
		default:
			a.stats.EventsDropped.Add(1)
		}
	}
	close(queue)
	<-done
}

func (a *Agent) writeEvents(queue <-chan *events.Event, w *events.Writer) {
	var sinkWarn rateLimited
	// The writer counts what it wrote out and what it lost.
	check := func(err error) {
		a.stats.EventsWritten.Store(w.Written())
		a.stats.SinkErrors.Store(w.Lost())
		switch {
		case err == nil:
		case errors.Is(err, events.ErrRotate):
			sinkWarn.warn(a.log, "events file not rotated; writing on", err)
		default:
			sinkWarn.warn(a.log, "events not written", err)
		}
	}
	// Lines are written out when 64 KiB are buffered (the writer does it)
	// or flushDelay after the first line buffered: a busy pipe makes few
	// large writes, a quiet one is on disk within milliseconds.
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	armed := false
	for {
		select {
		case ev, ok := <-queue:
			if !ok {
				check(w.Flush())
				return
			}
			if !a.sinkTypes.match(ev) {
				continue
			}
			check(w.Write(ev))
			if !armed {
				flush.Reset(flushDelay)
				armed = true
			}
		case <-flush.C:
			armed = false
			check(w.Flush())
		}
	}
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

// flushDelay bounds how long a written event waits in the sink's buffer.
const flushDelay = 2 * time.Millisecond

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
func (a *Agent) signalForKernel(raw *bpf.RawEvent, sig unix.Signal) {
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
