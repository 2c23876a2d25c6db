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
	clock := newBootClock()
	for {
		raw, err := src.Read()
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
		ev := a.convert(raw, clock.wall(raw.BootNs))
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
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-queue:
			if !ok {
				if err := w.Flush(); err != nil {
					a.log.Warn("flush events", zap.Error(err))
				}
				return
			}
			if err := w.Write(ev); err != nil {
				a.stats.EventsDropped.Add(1)
				continue
			}
			a.stats.EventsWritten.Add(1)
			if len(queue) == 0 {
				if err := w.Flush(); err != nil {
					a.log.Warn("flush events", zap.Error(err))
				}
			}
		case <-tick.C:
			_ = w.Flush()
		}
	}
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
