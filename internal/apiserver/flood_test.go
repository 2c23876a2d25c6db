package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/internal/api"
)

// A flood of idle connections and garbage from root peers does not stop a
// real hook's registration within the hook's deadline, and the server's
// goroutines stay bounded.
func TestFloodDoesNotStopRegistrations(t *testing.T) {
	path, _, _ := serve(t, newFakeHandler(nil))
	base := runtime.NumGoroutine()
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	dial := func() net.Conn {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
		return c
	}
	// Idle connections: eight times what the server lets wait (both ends
	// of each are in this process: stay well within its descriptors).
	idle := 8 * MaxWaiting
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && uint64(3*idle) > lim.Cur {
		idle = int(lim.Cur / 3)
	}
	for i := 0; i < idle; i++ {
		dial()
	}
	// Garbage, and frames announcing more than the limit.
	junk := make([]byte, 4096)
	_, _ = rand.Read(junk)
	for i := 0; i < 50; i++ {
		garbage, oversize := dial(), dial()
		go func() { _, _ = garbage.Write(junk) }()
		go func() { _, _ = oversize.Write([]byte{0xff, 0xff, 0xff, 0xff}) }()
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // the hook's default deadline
	defer cancel()
	resp, err := api.Call(ctx, path, sampleRegister())
	if err != nil || !resp.OK {
		t.Fatalf("registration under flood: %v %+v after %s", err, resp, time.Since(start))
	}
	t.Logf("registration under a flood of %d connections answered in %s", len(conns), time.Since(start).Round(time.Millisecond))
	// The flood's own writers and the connections being dropped end on
	// their own schedule: wait for the count to settle under the bound.
	want := MaxWaiting + 16
	deadline := time.Now().Add(5 * time.Second)
	for n := runtime.NumGoroutine() - base; n > want; n = runtime.NumGoroutine() - base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines more than before the flood for 5 s, want at most %d", n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Idle connections, oversized frames and random bytes on the socket
// neither stop the server nor delay a real request: each connection is
// served on its own and dropped at its deadline or its first bad frame.
func TestFloodDoesNotStarveRequests(t *testing.T) {
	h := newFakeHandler(func(*api.Request) (*api.Response, error) { return &api.Response{Status: &api.Status{}}, nil })
	path, _, _ := serve(t, h)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		return c
	}
	for i := 0; i < 200; i++ {
		dial() // says nothing
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	var huge [4]byte
	binary.BigEndian.PutUint32(huge[:], 0xffffffff)
	for i := 0; i < 50; i++ {
		c := dial()
		junk := make([]byte, 1+r.IntN(4096))
		for j := range junk {
			junk[j] = byte(r.UintN(256))
		}
		if i%2 == 0 {
			junk = append(huge[:], junk...)
		}
		_, _ = c.Write(junk)
	}
	start := time.Now()
	resp, err := api.Call(callCtx(t), path, &api.Request{Op: api.OpStatus})
	if err != nil || resp.Status == nil {
		t.Fatalf("status during the flood: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("status took %v during the flood", took)
	}
	// Garbage never reaches the handler.
	for _, req := range h.requests() {
		if req.Op != api.OpStatus {
			t.Fatalf("handler saw %+v", req)
		}
	}
	if n := len(h.requests()); n != 1 {
		t.Fatalf("handler saw %d requests, want the one status", n)
	}
}
