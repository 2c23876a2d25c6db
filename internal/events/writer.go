package events

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// ErrRotate marks a failed rotation of an events file. The event that
// triggered it was still written, to the file as it was; rotation is tried
// again after another Rotation.MaxSize bytes.
var ErrRotate = errors.New("rotate events file")

// LostError says how many events a failed encode or write lost.
type LostError struct {
	Events int
	Err    error
}

func (e *LostError) Error() string { return fmt.Sprintf("%d events lost: %v", e.Events, e.Err) }
func (e *LostError) Unwrap() error { return e.Err }

// flushAt is how many buffered bytes make Write flush by itself.
const flushAt = 64 << 10

// Writer writes events as JSON lines. Each line is encoded whole before
// it is buffered, and a file opened by OpenFile rotates only between
// lines, so rotation never splits or loses a line. It counts the events
// it wrote out and those it lost.
type Writer struct {
	mu      sync.Mutex
	out     io.Writer
	pending []byte        // whole lines not written out yet
	lines   int           // lines in pending
	line    []byte        // a line held aside while the file rotates
	enc     Encoder       // Write's
	file    *rotatingFile // nil: the caller's io.Writer, not rotated
	written atomic.Uint64
	lost    atomic.Uint64
	bytes   atomic.Uint64 // written out
	writeNs atomic.Uint64 // in the sink's Write calls
}

// NewWriter writes to out; Close does not close out.
func NewWriter(out io.Writer) *Writer {
	return &Writer{out: out}
}

// OpenFile appends to path, creating it with mode 0600, and rotates it as
// rot says.
func OpenFile(path string, rot Rotation) (*Writer, error) {
	if err := rot.Validate(); err != nil {
		return nil, fmt.Errorf("open events file %s: %w", path, err)
	}
	f, err := openRotating(path, rot)
	if err != nil {
		return nil, err
	}
	w := NewWriter(f.f)
	w.file = f
	return w, nil
}

// Written is the number of events written out.
func (w *Writer) Written() uint64 { return w.written.Load() }

// BytesWritten is how many bytes were written out.
func (w *Writer) BytesWritten() uint64 { return w.bytes.Load() }

// WriteTime is how long writing out took: the time spent in the sink's
// Write calls (for a file, the write system calls). Against
// BytesWritten it is the rate the sink takes the events at, which
// bounds how fast they can be written whatever the agent does.
func (w *Writer) WriteTime() time.Duration { return time.Duration(w.writeNs.Load()) }

// Lost is the number of events that could not be encoded or written.
func (w *Writer) Lost() uint64 { return w.lost.Load() }

// Write encodes one event (AppendJSON) and buffers it until Flush (or
// until enough is buffered). A *LostError says what was lost; an error
// wrapping ErrRotate means the event was kept but the file could not
// rotate.
//
// The line is encoded straight into the buffer of pending lines: it is
// copied once, by the write that writes it out.
func (w *Writer) Write(e *Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := len(w.pending)
	b, err := w.AppendLine(w.pending, e, &w.enc)
	w.pending = b
	if err != nil {
		return err
	}
	return w.addedLocked(start)
}

// AppendLine appends e's line (AppendJSON and a newline, by enc) to b,
// for WriteLines: a caller may encode events where they are made, with
// its own Encoder, while another goroutine writes. An event that
// cannot be encoded is counted lost (a *LostError) and b is returned as
// it was.
func (w *Writer) AppendLine(b []byte, e *Event, enc *Encoder) ([]byte, error) {
	start := len(b)
	b, err := enc.AppendJSON(b, e)
	if err != nil {
		w.lost.Add(1)
		return b[:start], &LostError{Events: 1, Err: fmt.Errorf("encode event: %w", err)}
	}
	return append(b, '\n'), nil
}

// WriteLines buffers b, n whole lines made by AppendLine, as Write
// would each; errors as Write's. A large b while nothing else is
// buffered is written out at once, not copied: a caller that encodes
// batches of lines hands them over without another copy.
func (w *Writer) WriteLines(b []byte, n int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n == 0 {
		return nil
	}
	if w.file != nil && w.file.within(int64(len(b))) {
		// The file may rotate within b: line by line, as Write does.
		var first error
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n') + 1
			start := len(w.pending)
			w.pending = append(w.pending, b[:i]...)
			if err := w.addedLocked(start); err != nil && first == nil {
				first = err
			}
			b = b[i:]
		}
		return first
	}
	if w.file != nil {
		w.file.size += int64(len(b))
	}
	if len(b) < flushAt || w.lines > 0 {
		w.pending = append(w.pending, b...)
		w.lines += n
		if len(w.pending) >= flushAt {
			return w.flushLocked()
		}
		return nil
	}
	return w.writeOutLocked(b, n)
}

// addedLocked takes the line just appended to pending at start: it
// rotates the file before it when due, and writes out when enough is
// buffered.
func (w *Writer) addedLocked(start int) error {
	n := len(w.pending) - start
	var rotErr error
	if w.file != nil && w.file.due(int64(n)) {
		// The lines before go to the file as it is, this one to the next.
		w.line = append(w.line[:0], w.pending[start:]...)
		w.pending = w.pending[:start]
		err := w.flushLocked()
		if err == nil {
			if err := w.file.rotate(); err != nil {
				rotErr = fmt.Errorf("%w %s: %w", ErrRotate, w.file.path, err)
			}
			w.out = w.file.f
		}
		w.pending = append(w.pending, w.line...)
		if err != nil {
			w.lines++ // this event is still buffered; rotation waits
			w.file.size += int64(n)
			return err
		}
	}
	w.lines++
	if w.file != nil {
		w.file.size += int64(n)
	}
	if len(w.pending) >= flushAt {
		if err := w.flushLocked(); err != nil {
			return err
		}
	}
	return rotErr
}

// Flush writes buffered events out.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

// flushLocked writes the buffered lines in one write. On failure the
// lines not written completely are lost and counted, and the buffer
// starts empty, so a passing failure (a full disk) loses only those.
func (w *Writer) flushLocked() error {
	if w.lines == 0 {
		return nil
	}
	err := w.writeOutLocked(w.pending, w.lines)
	w.pending = w.pending[:0]
	w.lines = 0
	return err
}

// writeOutLocked writes b, lines whole lines, in one write, counting
// those written and those lost (not written completely).
func (w *Writer) writeOutLocked(b []byte, lines int) error {
	start := time.Now()
	n, err := w.out.Write(b)
	w.writeNs.Add(uint64(time.Since(start)))
	w.bytes.Add(uint64(n))
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	done := lines
	if n < len(b) {
		done = bytes.Count(b[:n], []byte{'\n'})
	}
	w.written.Add(uint64(done))
	if w.file != nil {
		w.file.size -= int64(len(b) - n)
	}
	if err != nil {
		lost := lines - done
		w.lost.Add(uint64(lost))
		return &LostError{Events: lost, Err: fmt.Errorf("write events: %w", err)}
	}
	return nil
}

// Reopen writes out what is buffered and opens the events file again at
// its path, for logrotate: after the file was renamed, events go to a new
// file at the path. On failure the file open before stays in use. A
// Writer on the caller's io.Writer (NewWriter) does nothing.
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.file == nil {
		return nil
	}
	ferr := w.flushLocked()
	f, size, err := openAppend(w.file.path)
	if err != nil {
		return errors.Join(ferr, fmt.Errorf("reopen %s: %w", w.file.path, err))
	}
	old := w.file.f
	w.file.f, w.file.size, w.file.retryAt = f, size, 0
	w.out = f
	if err := old.Close(); err != nil {
		return errors.Join(ferr, fmt.Errorf("close the events file before: %w", err))
	}
	return ferr
}

// Close flushes and closes the file it opened.
func (w *Writer) Close() error {
	err := w.Flush()
	if w.file != nil {
		if cerr := w.file.close(); err == nil {
			err = cerr
		}
	}
	return err
}
