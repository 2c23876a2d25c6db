package record

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring reads a BPF ring buffer map where the kernel writes it: each
// record is decoded in place, not copied out first (but for the one a
// lap that runs past the end of the data pages), and the consumer
// position the producers read is stored once per batch, not per
// record (every store moved that cache line away from the programs'
// CPUs). It waits for records in the Go runtime's poller, not in a
// blocking epoll_wait: a goroutine blocked in a system call makes the
// runtime's monitor thread wake every 20 us to take its P back, which
// cost the agent as much CPU as reading the records.
type ring struct {
	cons, prod []byte  // mmap'ed: the consumer page; the producer page and the data
	consPos    *uint64 // in cons, written by the reader
	prodPos    *uint64 // in prod, written by the kernel
	data       []byte  // the data pages, mapped once (see openRing)
	joined     []byte  // a record that wraps around data's end, put together
	mask       uint64
	pos        uint64 // the position read up to
	stored     uint64 // the position last stored in consPos
	file       *os.File
	conn       syscall.RawConn
}

// Ring buffer record headers (include/uapi/linux/bpf.h).
const (
	ringHeaderSize = 8
	ringBusyBit    = 1 << 31
	ringDiscardBit = 1 << 30
)

// storeEvery is how far the reader reads before it gives the room back
// (stores the consumer position) while records keep coming: a fraction
// of the ring, so the producers never see it fuller than it is by more.
const storeEvery = 32 << 10

// openRing maps the ring buffer map fd (of size bytes of data) and puts
// a duplicate of fd into the runtime's poller. The kernel offers the
// data pages twice in a row, so that no record wraps; mapped so, they
// count twice in the agent's RSS (8 MiB for the 4 MiB ring). Mapped
// once, the one record a lap that runs past the end is copied together
// (next).
func openRing(fd, size int) (*ring, error) {
	page := os.Getpagesize()
	cons, err := unix.Mmap(fd, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap ring buffer consumer page: %w", err)
	}
	prod, err := unix.Mmap(fd, int64(page), page+size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		_ = unix.Munmap(cons)
		return nil, fmt.Errorf("mmap ring buffer data: %w", err)
	}
	r := &ring{cons: cons, prod: prod, consPos: (*uint64)(unsafe.Pointer(&cons[0])),
		prodPos: (*uint64)(unsafe.Pointer(&prod[0])), data: prod[page:], mask: uint64(size - 1)}
	r.pos = atomic.LoadUint64(r.consPos)
	r.stored = r.pos
	if err := r.openPoll(fd); err != nil {
		r.unmap()
		return nil, err
	}
	return r, nil
}

// openPoll puts a non-blocking duplicate of fd into the runtime's
// poller (the kernel's ring buffer wakes it when the programs ask).
func (r *ring) openPoll(fd int) error {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("duplicate ring buffer fd: %w", err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return fmt.Errorf("ring buffer fd non-blocking: %w", err)
	}
	r.file = os.NewFile(uintptr(dup), "ringbuf")
	if r.conn, err = r.file.SyscallConn(); err != nil {
		r.file.Close()
		return fmt.Errorf("ring buffer fd: %w", err)
	}
	// Not in the poller, a deadline could not end a wait.
	if err := r.file.SetReadDeadline(time.Time{}); err != nil {
		r.file.Close()
		return fmt.Errorf("ring buffer fd not pollable: %w", err)
	}
	return nil
}

// next is the next committed record, or nil when there is none yet; it
// stays valid until the one after is asked for, or wait: only then is
// its room given back.
func (r *ring) next() ([]byte, error) {
	if r.pos-r.stored >= storeEvery {
		r.store() // the records returned before: the caller is done with them
	}
	for {
		prod := atomic.LoadUint64(r.prodPos)
		if prod == r.pos {
			return nil, nil
		}
		if prod-r.pos < ringHeaderSize {
			return nil, errors.New("ring buffer record header cut short")
		}
		start := r.pos & r.mask
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[start])))
		if hdr&ringBusyBit != 0 {
			continue // reserved, not committed yet: the program is writing it
		}
		n := uint64(hdr &^ (ringBusyBit | ringDiscardBit))
		room := (ringHeaderSize + n + 7) &^ 7
		if prod-r.pos < room {
			return nil, errors.New("ring buffer record cut short")
		}
		r.pos += room
		if hdr&ringDiscardBit != 0 {
			continue
		}
		return r.body(start, n), nil
	}
}

// body is the n bytes of the record whose header is at start: in place,
// or put together in r.joined when they run past the end of the data.
// A header never wraps: positions are 8-byte aligned and the data's
// size is a multiple of pages.
func (r *ring) body(start, n uint64) []byte {
	from := (start + ringHeaderSize) & r.mask
	if from+n <= uint64(len(r.data)) {
		return r.data[from : from+n]
	}
	if uint64(cap(r.joined)) < n {
		r.joined = make([]byte, n)
	}
	joined := r.joined[:n]
	k := copy(joined, r.data[from:])
	copy(joined[k:], r.data[:n-uint64(k)])
	return joined
}

// pending reports whether more records were there at the last look.
func (r *ring) pending() bool { return atomic.LoadUint64(r.prodPos) != r.pos }

// store gives the room of the records read back to the producers.
func (r *ring) store() {
	if r.stored != r.pos {
		atomic.StoreUint64(r.consPos, r.pos)
		r.stored = r.pos
	}
}

// wait blocks until the kernel signals records, until deadline, or
// until stop says so; it returns at once when records are there.
func (r *ring) wait(deadline time.Time, stop func() bool) error {
	r.store()
	if err := r.file.SetReadDeadline(deadline); err != nil {
		return err
	}
	return r.conn.Read(func(uintptr) bool { return stop() || r.pending() })
}

// interrupt makes a wait return now (its deadline passes).
func (r *ring) interrupt() error { return r.file.SetReadDeadline(time.Unix(1, 0)) }

// closePoll ends waits, which return an error.
func (r *ring) closePoll() error { return r.file.Close() }

// unmap releases the mappings; the ring must not be read afterwards.
func (r *ring) unmap() {
	_ = unix.Munmap(r.prod)
	_ = unix.Munmap(r.cons)
	r.prod, r.cons, r.data = nil, nil, nil
}
