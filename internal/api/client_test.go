package api

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
