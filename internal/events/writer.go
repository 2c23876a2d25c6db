package events

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
)

// Writer writes events as JSON lines.
type Writer struct {
	mu     sync.Mutex
	buf    *bufio.Writer
	enc    *json.Encoder
	closer io.Closer
}

// NewWriter writes to out; Close does not close out.
func NewWriter(out io.Writer) *Writer {
	b := bufio.NewWriterSize(out, 64<<10)
	return &Writer{buf: b, enc: json.NewEncoder(b)}
}

// OpenFile appends to path, creating it with mode 0600.
func OpenFile(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open events file: %w", err)
	}
	w := NewWriter(f)
	w.closer = f
	return w, nil
}

// Write encodes one event; it is buffered until Flush.
func (w *Writer) Write(e *Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.enc.Encode(e); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return nil
}

// Flush writes buffered events out.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.buf.Flush(); err != nil {
		return fmt.Errorf("flush events: %w", err)
	}
	return nil
}

// Close flushes and closes the file it opened.
func (w *Writer) Close() error {
	err := w.Flush()
	if w.closer != nil {
		if cerr := w.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
