package apiserver

import (
	"context"
	"crypto/rand"
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
		c := dial()
		go func() { _, _ = c.Write(junk) }()
		c = dial()
		go func() { _, _ = c.Write([]byte{0xff, 0xff, 0xff, 0xff}) }()
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // the hook's default deadline
	defer cancel()
	resp, err := api.Call(ctx, path, sampleRegister())
	if err != nil || !resp.OK {
		t.Fatalf("registration under flood: %v %+v after %s", err, resp, time.Since(start))
	}
	t.Logf("registration under a flood of %d connections answered in %s", len(conns), time.Since(start).Round(time.Millisecond))
	if n := runtime.NumGoroutine() - base; n > MaxWaiting+16 {
		t.Errorf("%d goroutines more than before the flood, want at most %d", n, MaxWaiting+16)
	}
}
