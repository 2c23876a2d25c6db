// Package peer is a loopback TCP peer for the tests: a Listener that
// stands in for a reverse shell's attacker and for an allowed peer, and
// records what each connection receives. The e2e tests and the vmtest
// suite share it; it does not import testing.
package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Listener is a TCP listener on the loopback that accepts every connection,
// optionally writes a greeting to it, and records everything it receives
// per connection. It stands in for the attacker's end of a reverse shell
// and for an ordinary allowed peer.
type Listener struct {
	ln       net.Listener
	greeting []byte

	mu      sync.Mutex
	conns   []*connRecord
	changed chan struct{} // closed and replaced on every change
	wg      sync.WaitGroup
}

type connRecord struct {
	remote string
	conn   net.Conn
	data   bytes.Buffer
	closed bool
}

// ConnRecord is a snapshot of one accepted connection.
type ConnRecord struct {
	Remote string
	Data   string
	Closed bool // the peer closed or reset it
}

// Listen starts a Listener on addr (e.g. "127.0.0.1:0"). greeting, if not
// empty, is written to every connection right after it is accepted.
func Listen(addr string, greeting []byte) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	l := &Listener{ln: ln, greeting: append([]byte(nil), greeting...), changed: make(chan struct{})}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Addr returns the listening address, e.g. "127.0.0.1:43127".
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Port returns the listening port.
func (l *Listener) Port() int { return l.ln.Addr().(*net.TCPAddr).Port }

// acceptLoop records and serves every accepted connection until the
// listener is closed.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		rec := &connRecord{remote: c.RemoteAddr().String(), conn: c}
		l.mu.Lock()
		l.conns = append(l.conns, rec)
		l.notifyLocked()
		l.mu.Unlock()
		l.wg.Add(1)
		go l.serve(rec)
	}
}

// serve writes the greeting to rec's connection and records what it
// receives until the peer closes it or Close does.
func (l *Listener) serve(rec *connRecord) {
	defer l.wg.Done()
	defer rec.conn.Close()
	if len(l.greeting) > 0 {
		// A peer killed right away makes this fail; that is an outcome the
		// tests observe through the recorded data, not an error here.
		_ = rec.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = rec.conn.Write(l.greeting)
	}
	buf := make([]byte, 4096)
	for {
		n, err := rec.conn.Read(buf)
		l.mu.Lock()
		if n > 0 {
			rec.data.Write(buf[:n])
		}
		if err != nil {
			rec.closed = true
		}
		l.notifyLocked()
		l.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// notifyLocked wakes WaitUntil's waiters; l.mu is held.
func (l *Listener) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Conns returns a snapshot of every accepted connection.
func (l *Listener) Conns() []ConnRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ConnRecord, 0, len(l.conns))
	for _, c := range l.conns {
		out = append(out, ConnRecord{Remote: c.remote, Data: c.data.String(), Closed: c.closed})
	}
	return out
}

// Received returns everything received on all connections, in accept order.
func (l *Listener) Received() string {
	var b strings.Builder
	for _, c := range l.Conns() {
		b.WriteString(c.Data)
	}
	return b.String()
}

// WaitUntil waits until cond holds for a snapshot of the connections, or
// ctx ends. It reports whether cond held.
func (l *Listener) WaitUntil(ctx context.Context, cond func([]ConnRecord) bool) bool {
	for {
		l.mu.Lock()
		ch := l.changed
		l.mu.Unlock()
		if cond(l.Conns()) {
			return true
		}
		select {
		case <-ctx.Done():
			return cond(l.Conns())
		case <-ch:
		}
	}
}

// WaitConn waits up to timeout for at least one accepted connection.
func (l *Listener) WaitConn(timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.WaitUntil(ctx, func(c []ConnRecord) bool { return len(c) > 0 })
}

// WaitReceived waits up to timeout for substr to appear in the data of any
// connection (an empty substr: for any data at all) and reports whether it
// did. To assert that something is never received, call it and expect
// false.
func (l *Listener) WaitReceived(substr string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.WaitUntil(ctx, func(cs []ConnRecord) bool {
		for _, c := range cs {
			if c.Data != "" && strings.Contains(c.Data, substr) {
				return true
			}
		}
		return false
	})
}

// Close stops accepting, closes every connection and waits for the
// goroutines to finish.
func (l *Listener) Close() error {
	err := l.ln.Close()
	l.mu.Lock()
	for _, c := range l.conns {
		c.conn.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("closing listener %s: %w", l.Addr(), err)
	}
	return nil
}
