package api

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func ctx5s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCallMissingSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nobody.sock")
	_, err := Call(ctx5s(t), path, &Request{Op: OpStatus})
	if err == nil || !strings.Contains(err.Error(), "not reachable") || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v", err)
	}
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "silent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return path
}

func TestCallDeadline(t *testing.T) {
	path := silentServer(t)
	const deadline = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err := Call(ctx, path, &Request{Op: OpStatus})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "did not answer status") {
		t.Fatalf("got %v, want a timeout", err)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v does not report the deadline", err)
	}
	if took >= 2*deadline {
		t.Fatalf("Call took %v with a %v deadline", took, deadline)
	}
}

func TestCallCancel(t *testing.T) {
	path := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := time.AfterFunc(200*time.Millisecond, cancel)
	defer timer.Stop()
	start := time.Now()
	_, err := Call(ctx, path, &Request{Op: OpStatus})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("cancelled Call took %v", took)
	}
}

// A server may answer before it reads the request and hang up (the agent
// does this to refuse a non-root peer). Call must report that answer, not
// the broken pipe its own write then runs into. The request here is larger
// than the socket buffer, so the write is still in progress when the
// server hangs up; with a small request the same happens whenever the
// server is quicker than the client.
func TestCallReadsAnswerAfterWriteFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "early.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = WriteMessage(c, &Response{Error: "peer uid 1000 refused: root only"})
		c.Close()
	}()
	req := &Request{Op: OpRegister, Register: &Registration{ContainerID: "c1",
		Annotations: map[string]string{"big": strings.Repeat("x", 900<<10)}}}
	_, err = Call(ctx5s(t), path, req)
	if err == nil || !strings.Contains(err.Error(), "peer uid 1000 refused: root only") {
		t.Fatalf("got %v, want the server's refusal", err)
	}
}

// answerServer listens on path and answers every request with resp; it
// returns the number of connections taken so far.
func answerServer(t *testing.T, path string, resp *Response) func() int {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			var req Request
			if ReadMessage(c, &req) == nil {
				_ = WriteMessage(c, resp)
			}
			c.Close()
		}
	}()
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// An agent that creates its socket later, over a stale socket file that
// refuses connections, is waited for.
func TestCallWaitingAgentComesUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "late.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	_, err = Call(ctx5s(t), path, &Request{Op: OpStatus})
	if !NotListening(err) || !errors.Is(err, syscall.ECONNREFUSED) {
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
		answerServer(t, path, &Response{OK: true, Status: &Status{Node: "late"}})
	})
	t.Cleanup(func() { <-up })
	start := time.Now()
	resp, err := CallWaiting(ctx5s(t), path, &Request{Op: OpStatus}, 5*time.Second, time.Second)
	if err != nil || resp.Status == nil || resp.Status.Node != "late" {
		t.Fatalf("got %+v, %v", resp, err)
	}
	if took := time.Since(start); took < late || took > late+time.Second {
		t.Fatalf("answered after %v; the agent came up after %v", took, late)
	}
}

// Nobody ever listens: the error comes after the wait and names the socket.
func TestCallWaitingGivesUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nobody.sock")
	const wait = 250 * time.Millisecond
	start := time.Now()
	_, err := CallWaiting(ctx5s(t), path, &Request{Op: OpStatus}, wait, time.Second)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "no agent answered within 250ms") || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v", err)
	}
	if !NotListening(err) {
		t.Fatalf("error %v does not say why", err)
	}
	if took < wait || took > wait+time.Second {
		t.Fatalf("gave up after %v with a %v wait", took, wait)
	}
	// No wait: one call, Call's own error.
	_, err = CallWaiting(ctx5s(t), path, &Request{Op: OpStatus}, 0, time.Second)
	if err == nil || strings.Contains(err.Error(), "within") || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("without a wait: got %v", err)
	}
}

// An agent's refusal and an agent that does not answer end the wait at
// once: they are answers, not absence.
func TestCallWaitingStopsAtAnswers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refuses.sock")
	calls := answerServer(t, path, &Response{Error: "no status for you"})
	start := time.Now()
	_, err := CallWaiting(ctx5s(t), path, &Request{Op: OpStatus}, 5*time.Second, time.Second)
	if err == nil || !strings.Contains(err.Error(), "agent refused status: no status for you") {
		t.Fatalf("got %v", err)
	}
	if n := calls(); n != 1 || time.Since(start) > time.Second {
		t.Fatalf("%d calls in %v, want one at once", n, time.Since(start))
	}
	silent := silentServer(t)
	start = time.Now()
	_, err = CallWaiting(ctx5s(t), silent, &Request{Op: OpStatus}, 5*time.Second, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not answer status") {
		t.Fatalf("silent agent: got %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("silent agent: gave up after %v, want one per-call timeout (200ms)", took)
	}
}

// Cancelling the context ends the wait.
func TestCallWaitingCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nobody.sock")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := CallWaiting(ctx, path, &Request{Op: OpStatus}, time.Minute, time.Second)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want context.Canceled naming the socket", err)
	}
}

// CallWaitingVerdict keeps the verdict of an answer, a refusal's failure
// policy too, and leaves the rest undecoded.
func TestCallWaitingVerdict(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.sock")
	answerServer(t, ok, &Response{Protocol: ProtocolVersion, OK: true, Workload: &Workload{ContainerID: "c1"}})
	resp, err := CallWaitingVerdict(ctx5s(t), ok, &Request{Op: OpRegister}, time.Second, time.Second)
	if err != nil || !resp.OK || resp.Protocol != ProtocolVersion || resp.Workload != nil {
		t.Fatalf("got %+v, %v; want ok, protocol %d, no workload decoded", resp, err, ProtocolVersion)
	}
	full, err := CallWaiting(ctx5s(t), ok, &Request{Op: OpRegister}, time.Second, time.Second)
	if err != nil || full.Workload == nil || full.Workload.ContainerID != "c1" {
		t.Fatalf("CallWaiting: got %+v, %v; want the workload", full, err)
	}
	refused := filepath.Join(dir, "refused.sock")
	answerServer(t, refused, &Response{Protocol: ProtocolVersion, Error: "no profile", FailurePolicy: FailOpen})
	resp, err = CallWaitingVerdict(ctx5s(t), refused, &Request{Op: OpRegister}, time.Second, time.Second)
	if err == nil || !strings.Contains(err.Error(), "no profile") || resp == nil || resp.FailurePolicy != FailOpen {
		t.Fatalf("refusal: got %+v, %v; want the error and failure policy open", resp, err)
	}
}
