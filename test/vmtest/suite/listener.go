package main

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// --- a loopback TCP peer ---

// listener accepts connections on 127.0.0.1, writes a greeting to each and
// records what it receives.
type listener struct {
	ln       net.Listener
	greeting string
	mu       sync.Mutex
	conns    int
	data     bytes.Buffer
}

func listen(r *result, greeting string) *listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.fatalf("listening on 127.0.0.1: %v", err)
	}
	l := &listener{ln: ln, greeting: greeting}
	go l.loop()
	return l
}

func (l *listener) loop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		l.conns++
		l.mu.Unlock()
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(probeTimeout))
			if l.greeting != "" {
				_, _ = c.Write([]byte(l.greeting))
			}
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				l.mu.Lock()
				l.data.Write(buf[:n])
				l.mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
}

func (l *listener) addr() string { return l.ln.Addr().String() }

func (l *listener) close() { l.ln.Close() }

func (l *listener) snapshot() (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns, l.data.String()
}

// waitFor waits until pred holds for the listener's state.
func (l *listener) waitFor(timeout time.Duration, pred func(conns int, data string) bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if pred(l.snapshot()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
