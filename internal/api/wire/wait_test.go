package wire

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An agent that creates its socket later, over a stale socket file that
// refuses connections, is waited for.
func TestRegisterWaitsForAgent(t *testing.T) {
	path := sock(t)
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	_, err = Unregister(path, "c1", in5s())
	if !NotListening(err) || !errors.Is(err, syscall.ECONNREFUSED) || !strings.HasPrefix(err.Error(), "agent at "+path+" is not reachable: ") {
		t.Fatalf("stale socket: got %v, want connection refused", err)
	}
	const late = 300 * time.Millisecond
	up := make(chan struct{})
	time.AfterFunc(late, func() {
		defer close(up)
		if err := os.Remove(path); err != nil {
			t.Error(err)
			return
		}
		agent(t, path, func([]byte) string { return `{"protocol":2,"ok":true}` })
	})
	t.Cleanup(func() { <-up })
	start := time.Now()
	v, err := Register(path, sampleRegistration(), 5*time.Second, time.Second, in5s())
	if err != nil || !v.OK {
		t.Fatalf("got %+v, %v", v, err)
	}
	if took := time.Since(start); took < late || took > late+time.Second {
		t.Fatalf("answered after %v; the agent came up after %v", took, late)
	}
}

// Nobody ever listens: the error comes after the wait, names the socket
// and says why; the overall deadline ends the wait sooner.
func TestRegisterGivesUp(t *testing.T) {
	path := sock(t)
	const wait = 250 * time.Millisecond
	start := time.Now()
	v, err := Register(path, sampleRegistration(), wait, time.Second, in5s())
	took := time.Since(start)
	if v != nil || err == nil || !strings.HasPrefix(err.Error(), "no agent answered within 250ms: agent at "+path) || !NotListening(err) {
		t.Fatalf("got %+v, %v", v, err)
	}
	if took < wait || took > wait+time.Second {
		t.Fatalf("gave up after %v with a %v wait", took, wait)
	}
	start = time.Now()
	_, err = Register(path, sampleRegistration(), time.Minute, time.Second, time.Now().Add(100*time.Millisecond))
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.HasPrefix(err.Error(), "waiting for the agent at "+path) {
		t.Fatalf("deadline: got %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("deadline of 100ms: gave up after %v", took)
	}
	_, err = Register(path, sampleRegistration(), 0, time.Second, in5s())
	if err == nil || strings.Contains(err.Error(), "within") || !NotListening(err) {
		t.Fatalf("without a wait: got %v", err)
	}
}

// An agent that takes the connection and does not answer ends the wait
// at its per-call bound, and the error says so.
func TestRegisterSilentAgent(t *testing.T) {
	path := sock(t)
	agent(t, path, nil)
	start := time.Now()
	_, err := Register(path, sampleRegistration(), 5*time.Second, 200*time.Millisecond, in5s())
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.HasPrefix(err.Error(), "agent at "+path+" did not answer register: ") {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("silent agent: gave up after %v, want one per-call bound (200ms)", took)
	}
	start = time.Now()
	_, err = Unregister(path, "c1", time.Now().Add(200*time.Millisecond))
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("unregister: got %v after %v", err, time.Since(start))
	}
}

// Listening tells an agent that accepts from none, without a request.
func TestListening(t *testing.T) {
	path := sock(t)
	if err := Listening(path, in5s()); !NotListening(err) {
		t.Fatalf("no socket: got %v", err)
	}
	reqs := agent(t, path, nil)
	if err := Listening(path, in5s()); err != nil {
		t.Fatalf("listening: got %v", err)
	}
	if err := Listening(path, time.Now().Add(-time.Second)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("passed deadline: got %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if r := reqs(); len(r) != 0 {
		t.Fatalf("Listening sent %q", r)
	}
}
