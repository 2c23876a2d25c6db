package enforcer

import "github.com/cilium/ebpf/ringbuf"

// ErrFlushed is returned by Read after Flush, once every record that was
// in the ring buffer has been read.
var ErrFlushed = ringbuf.ErrFlushed

// Flush makes Read return what the ring buffer holds without waiting for
// more, then ErrFlushed: a reader drains the kernel's events before it
// stops.
func (r *EventReader) Flush() error { return r.rd.Flush() }
