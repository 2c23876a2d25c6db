package record

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ocigate/ocigate/bpf"
)

// Reader reads the kernel's ring buffer.
type Reader struct {
	mu       sync.Mutex // held while reading the ring; Close unmaps it under it
	rg       *ring      // nil once closed
	intern   interner
	stacks   *ebpf.Map     // stack_traces; nil: stacks are not read
	sleeps   *ebpf.Map     // reader_sleeps; nil: the reader always polls
	interval time.Duration // until the next look (PollInterval..MaxPollInterval)
	found    bool          // records were read since the last look
	empty    int           // looks in a row that found nothing
	asleep   bool          // reader_sleeps is set: the kernel wakes the reader
	more     bool          // records were ready after the last one read (Pending)
	flushed  atomic.Bool   // Flush was called: Read returns ErrFlushed once the ring is empty
	closed   atomic.Bool
	poll     *ring // rg, for Flush and Close, which do not take mu
}

// NewReader opens the ring buffer events (the events map); the stack
// traces records name are read from stacks (the stack_traces map), when
// not nil. With sleeps (the reader_sleeps map) not nil, a reader of a
// quiet ring stops polling and waits until the programs wake it.
func NewReader(events, stacks, sleeps *ebpf.Map) (*Reader, error) {
	size := int(events.MaxEntries())
	if events.Type() != ebpf.RingBuf || size <= 0 || size&(size-1) != 0 {
		return nil, fmt.Errorf("open event ring buffer: %v of %d bytes is not a ring buffer", events.Type(), size)
	}
	rg, err := openRing(events.FD(), size)
	if err != nil {
		return nil, fmt.Errorf("open event ring buffer: %w", err)
	}
	r := &Reader{rg: rg, poll: rg, stacks: stacks, sleeps: sleeps, interval: PollInterval}
	// A reader that stopped asleep (an agent killed) left the flag set:
	// the programs would wake nobody for every record.
	if err := r.setSleeps(false); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// PollInterval is how often the reader looks for records the kernel did
// not wake it for: it wakes the reader only once 512 KiB wait (or for a
// record the agent must act on), so that a busy ring is read in batches.
// It bounds how long a record waits in a quiet ring, where the first
// records of a container tell of processes outside it (the runtime)
// that the agent reads in /proc while they last. While every look
// finds records, the interval doubles up to MaxPollInterval: each look
// is a wakeup of the reader and then of the sink's writer, and of the
// Go runtime's monitor for as long as they run, which on a 2-CPU
// machine costs the agent more than the records it finds at fork+exec
// rates. make bench's loop, the agent's CPU per fork+exec+exit of
// /bin/true, side by side: ~80 us at 5 ms, ~45 at 20 ms on one machine;
// on another 23-24 at 20 ms, 15-16 at 50 ms, and 9-12 at 200 ms with
// the kernel's wakeup at 512 KiB rather than 64 (bpf/maps.h
// WAKEUP_BYTES). The agent's CPU is taken from the CPUs the workload
// forks and execs on. At 200 ms a stream of records reaches the events
// file within about as long, which a log can afford; the first records
// after a quiet spell are read at once (reader_sleeps) or within 5 ms,
// and records the agent must act on wake it at once. A look that finds
// none goes back to PollInterval.
const (
	PollInterval    = 5 * time.Millisecond
	MaxPollInterval = 200 * time.Millisecond
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

// ErrFlushed is returned by Read after Flush, once every record that was
// in the ring buffer has been read.
var ErrFlushed = errors.New("ring buffer flushed")

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
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.rg == nil || r.closed.Load() {
			return ErrClosed
		}
		b, err := r.rg.next()
		if err != nil {
			return fmt.Errorf("read event ring buffer: %w", err)
		}
		if b != nil {
			if r.asleep {
				r.wake()
			}
			r.found, r.more = true, r.rg.pending()
			if err := decodeInto(b, ev, &r.intern); err != nil {
				return err
			}
			ev.KernelStack, ev.UserStack = r.stack(ev.StackIDs[0]), r.stack(ev.StackIDs[1])
			return nil
		}
		if r.flushed.Swap(false) {
			r.rg.store()
			return ErrFlushed
		}
		err = r.rg.wait(r.deadline(), func() bool { return r.flushed.Load() || r.closed.Load() })
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Everything there was has been read: look again later.
			r.look()
		case err != nil && r.closed.Load():
			return ErrClosed
		case err != nil:
			return fmt.Errorf("wait for event ring buffer: %w", err)
		}
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
}

// deadline is when the next look is due: after the interval, or
// SleepLook asleep.
func (r *Reader) deadline() time.Time {
	if r.asleep {
		return time.Now().Add(SleepLook)
	}
	return time.Now().Add(r.interval)
}

// wake goes back to polling at the first record after a sleep: the
// programs need not wake the reader per record any more.
func (r *Reader) wake() {
	if r.setSleeps(false) != nil {
		return // still flagged: the next record tries again
	}
	r.asleep, r.empty, r.interval = false, 0, PollInterval
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
func (r *Reader) Pending() bool { return r.more }

// Close unblocks Read and releases the ring buffer's mappings.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	err := r.poll.closePoll() // a Read waiting returns, and lets go of mu
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rg.unmap()
	r.rg = nil
	return err
}

// Flush makes Read return what the ring buffer holds without waiting for
// more, then ErrFlushed: a reader drains the kernel's events before it
// stops.
func (r *Reader) Flush() error {
	r.flushed.Store(true)
	if err := r.poll.interrupt(); err != nil {
		return fmt.Errorf("flush event ring buffer: %w", err)
	}
	return nil
}
