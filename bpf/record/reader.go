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
	sleeps   *ebpf.Map     // reader_sleeps; nil: the reader always polls
	interval time.Duration // until the next look (PollInterval..MaxPollInterval)
	found    bool          // records were read since the last look
	empty    int           // looks in a row that found nothing
	asleep   bool          // reader_sleeps is set: the kernel wakes the reader
}

// NewReader opens the ring buffer events (the events map); the stack
// traces records name are read from stacks (the stack_traces map), when
// not nil. With sleeps (the reader_sleeps map) not nil, a reader of a
// quiet ring stops polling and waits until the programs wake it.
func NewReader(events, stacks, sleeps *ebpf.Map) (*Reader, error) {
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		return nil, fmt.Errorf("open event ring buffer: %w", err)
	}
	r := &Reader{rd: rd, stacks: stacks, sleeps: sleeps, interval: PollInterval}
	// A reader that stopped asleep (an agent killed) left the flag set:
	// the programs would wake nobody for every record.
	if err := r.setSleeps(false); err != nil {
		rd.Close()
		return nil, err
	}
	rd.SetDeadline(time.Now().Add(PollInterval))
	return r, nil
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

// After SleepAfterLooks looks in a row find no record (200 ms at
// PollInterval), the reader stops polling: it sets reader_sleeps, which
// makes the programs wake it with the next record, and waits. An idle
// node's agent then wakes about once per SleepLook instead of 200 times
// a second (each a few thread switches: measured 790 context switches
// and 7.5 ms of CPU a second before), and the first record after a
// quiet spell is read at once rather than at the next look. The first
// record read clears the flag and polling resumes. SleepLook bounds the
// wait should a wakeup ever be missed.
const (
	SleepAfterLooks = 40
	SleepLook       = time.Second
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
			// Everything there was has been read: look again later.
			r.look()
			continue
		}
		if errors.Is(err, ringbuf.ErrClosed) {
			return ErrClosed
		}
		if err != nil {
			return fmt.Errorf("read event ring buffer: %w", err)
		}
		if r.asleep {
			r.wake()
		}
		r.found = true
		if err := decodeInto(r.rec.RawSample, ev, &r.intern); err != nil {
			return err
		}
		ev.KernelStack, ev.UserStack = r.stack(ev.StackIDs[0]), r.stack(ev.StackIDs[1])
		return nil
	}
}

// look sets when to look next, after a look that found the ring empty:
// in PollInterval..MaxPollInterval while records come, or asleep, until
// the programs wake the reader, once SleepAfterLooks looks found none.
func (r *Reader) look() {
	if r.found {
		r.empty = 0
	} else {
		r.empty++
	}
	r.interval = nextInterval(r.interval, r.found)
	r.found = false
	if !r.asleep && r.sleeps != nil && r.empty >= SleepAfterLooks && r.setSleeps(true) == nil {
		r.asleep = true
	}
	if r.asleep {
		r.rd.SetDeadline(time.Now().Add(SleepLook))
		return
	}
	r.rd.SetDeadline(time.Now().Add(r.interval))
}

// wake goes back to polling at the first record after a sleep: the
// programs need not wake the reader per record any more.
func (r *Reader) wake() {
	if r.setSleeps(false) != nil {
		return // still flagged: the next record tries again
	}
	r.asleep, r.empty, r.interval = false, 0, PollInterval
	r.rd.SetDeadline(time.Now().Add(r.interval))
}

// setSleeps writes reader_sleeps, when the reader has it.
func (r *Reader) setSleeps(on bool) error {
	if r.sleeps == nil {
		return nil
	}
	v := uint32(0)
	if on {
		v = 1
	}
	if err := r.sleeps.Put(uint32(0), v); err != nil {
		return fmt.Errorf("set reader_sleeps: %w", err)
	}
	return nil
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
