package record

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/ocigate/ocigate/bpf"
)

// Reader reads the kernel's ring buffer.
type Reader struct {
	rd       *ringbuf.Reader
	rec      ringbuf.Record
	intern   interner
	stacks   *ebpf.Map     // stack_traces; nil: stacks are not read
	interval time.Duration // until the next look (PollInterval..MaxPollInterval)
	found    bool          // records were read since the last look
}

// NewReader opens the ring buffer events (the events map); the stack
// traces records name are read from stacks (the stack_traces map), when
// not nil.
func NewReader(events, stacks *ebpf.Map) (*Reader, error) {
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		return nil, fmt.Errorf("open event ring buffer: %w", err)
	}
	rd.SetDeadline(time.Now().Add(PollInterval))
	return &Reader{rd: rd, stacks: stacks, interval: PollInterval}, nil
}

// PollInterval is how often the reader looks for records the kernel did
// not wake it for: it wakes the reader only once 64 KiB wait (or for a
// record the agent must act on), so that a busy ring is read in batches.
// It bounds how long a record waits in a quiet ring, where the first
// records of a container tell of processes outside it (the runtime)
// that the agent reads in /proc while they last. While every look
// finds records, the interval doubles up to MaxPollInterval: each look
// is a wakeup, which on a 2-CPU machine costs the agent more than the
// records it finds at fork+exec rates (make bench's loop, side by
// side: ~80 us of the agent's CPU per fork+exec+exit of /bin/true at
// 5 ms, ~45 at 20 ms). A look that finds none goes back to PollInterval.
const (
	PollInterval    = 5 * time.Millisecond
	MaxPollInterval = 20 * time.Millisecond
)

// ErrClosed is returned by Read after Close.
var ErrClosed = os.ErrClosed

// Read blocks for the next event.
func (r *Reader) Read() (*RawEvent, error) {
	ev := &RawEvent{}
	if err := r.ReadInto(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// ReadInto blocks for the next event and decodes it into ev, reusing the
// array of its Args: the caller keeps no part of ev across calls. It is
// not safe for concurrent use.
func (r *Reader) ReadInto(ev *RawEvent) error {
	for {
		err := r.rd.ReadInto(&r.rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Everything there was has been read: poll again later.
			r.interval = nextInterval(r.interval, r.found)
			r.found = false
			r.rd.SetDeadline(time.Now().Add(r.interval))
			continue
		}
		if errors.Is(err, ringbuf.ErrClosed) {
			return ErrClosed
		}
		if err != nil {
			return fmt.Errorf("read event ring buffer: %w", err)
		}
		r.found = true
		if err := decodeInto(r.rec.RawSample, ev, &r.intern); err != nil {
			return err
		}
		ev.KernelStack, ev.UserStack = r.stack(ev.StackIDs[0]), r.stack(ev.StackIDs[1])
		return nil
	}
}

// nextInterval is the poll interval after one of d: twice as long (up to
// MaxPollInterval) when records were found since the last look, else
// PollInterval.
func nextInterval(d time.Duration, found bool) time.Duration {
	if !found {
		return PollInterval
	}
	return min(2*d, MaxPollInterval)
}

// stack reads the stack trace of id + 1 (0: none): its return addresses
// up to the first zero. nil when there is none or it is gone.
func (r *Reader) stack(id int32) []uint64 {
	if id <= 0 || r.stacks == nil {
		return nil
	}
	var frames [bpf.StackDepth]uint64
	if err := r.stacks.Lookup(uint32(id-1), &frames); err != nil {
		return nil
	}
	n := 0
	for n < len(frames) && frames[n] != 0 {
		n++
	}
	return append([]uint64(nil), frames[:n]...)
}

// Pending reports whether more records were ready when the last one was
// read: a caller may wait for them before passing what it read on.
func (r *Reader) Pending() bool { return r.rec.Remaining > 0 }

// Close unblocks Read.
func (r *Reader) Close() error { return r.rd.Close() }

// ErrFlushed is returned by Read after Flush, once every record that was
// in the ring buffer has been read.
var ErrFlushed = ringbuf.ErrFlushed

// Flush makes Read return what the ring buffer holds without waiting for
// more, then ErrFlushed: a reader drains the kernel's events before it
// stops.
func (r *Reader) Flush() error { return r.rd.Flush() }
