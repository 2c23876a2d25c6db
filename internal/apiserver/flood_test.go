package apiserver

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/api"
)

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
	r := rand.New(rand.NewPCG(1, 2))
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
