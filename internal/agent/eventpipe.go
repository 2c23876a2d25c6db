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

// EventSource yields the kernel's decisions.
type EventSource interface {
	Read() (*bpf.RawEvent, error)
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
// queued without waiting for more (*bpf.EventReader): Read then returns
// those records and bpf.ErrFlushed.
type Flusher interface {
	Flush() error
}

// RunEvents reads src until it is closed or ctx ends, turns each record
// into a JSON event and writes it to w. When ctx ends it first reads what
// the kernel still holds (a Flusher), then returns once the sink has
// written every queued event, or after the flush timeout, counting what
// was left as dropped.
func (a *Agent) RunEvents(ctx context.Context, src EventSource, w *events.Writer) {
	queue := make(chan *events.Event, QueueSize)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.writeEvents(queue, w)
	}()
	stop := context.AfterFunc(ctx, func() {
		if f, ok := src.(Flusher); ok && f.Flush() == nil {
			return
		}
		src.Close()
	})
	defer stop()
	clock := newBootClock()
	for {
		raw, err := src.Read()
		if err != nil {
			if errors.Is(err, bpf.ErrClosed) || errors.Is(err, bpf.ErrFlushed) || ctx.Err() != nil {
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
		ev := a.convert(raw, clock.wall(raw.BootNs))
		a.metrics.event(ev)
		a.hub.Publish(ev) // never blocks; ev is not changed after this
		select {
		case queue <- ev:
		default:
			a.stats.EventsDropped.Add(1)
		}
	}
	src.Close()
	close(queue)
	select {
	case <-done:
	case <-time.After(a.flushTimeout):
		left := len(queue)
		a.stats.EventsDropped.Add(uint64(left))
		a.log.Error("events sink blocked at stop: queued events not written", zap.Int("dropped", left),
			zap.Duration("waited", a.flushTimeout))
	}
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
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-queue:
			if !ok {
				check(w.Flush())
				return
			}
			check(w.Write(ev))
			if len(queue) == 0 {
				check(w.Flush())
			}
		case <-tick.C:
			check(w.Flush())
		}
	}
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
