package peer

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// dialed starts a Listener with greeting and connects to it; both are
// closed when t ends.
func dialed(t *testing.T, greeting string) (*Listener, net.Conn) {
	t.Helper()
	ln, err := Listen("127.0.0.1:0", []byte(greeting))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c, err := net.Dial("tcp", ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ln, c
}

func TestListenerRecords(t *testing.T) {
	ln, c := dialed(t, "hello\n")
	buf := make([]byte, 6)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err != nil || string(buf) != "hello\n" {
		t.Fatalf("greeting %q, %v", buf, err)
	}
	c.Write([]byte("PWNED-42\n"))
	if !ln.WaitReceived("PWNED-42", 5*time.Second) {
		t.Fatalf("not received; conns %+v", ln.Conns())
	}
	if ln.WaitReceived("other", 100*time.Millisecond) {
		t.Error("received something never sent")
	}
	if !ln.WaitReceived("", time.Second) || ln.Received() != "PWNED-42\n" {
		t.Errorf("received %q", ln.Received())
	}
	c.Close()
	ok := ln.WaitUntil(context.Background(), func(cs []ConnRecord) bool { return len(cs) == 1 && cs[0].Closed })
	if !ok {
		t.Errorf("close not recorded: %+v", ln.Conns())
	}
}

// An empty substr waits for data, not for a connection.
func TestWaitReceivedEmpty(t *testing.T) {
	ln, _ := dialed(t, "")
	if !ln.WaitConn(5 * time.Second) {
		t.Fatal("no connection")
	}
	if ln.WaitReceived("", 100*time.Millisecond) {
		t.Error("a connection that sent nothing counted as data")
	}
}

// Exchange waits for a server that starts late, half-closes, and reads
// until the server closes or until the marker.
func TestExchange(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens at first: Exchange retries
	go func() {
		time.Sleep(200 * time.Millisecond)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return
		}
		defer ln.Close()
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(io.LimitReader(c, 6))
			_, _ = c.Write([]byte(strings.ToUpper(string(b)) + "MARK"))
			c.Close()
		}
	}()
	got, err := Exchange(port, "hello\n", true, "", 5*time.Second)
	if err != nil || got != "HELLO\nMARK" {
		t.Fatalf("Exchange = %q, %v", got, err)
	}
	if got, err := Exchange(port, "hello\n", false, "HELLO", 5*time.Second); err != nil || !strings.HasPrefix(got, "HELLO") {
		t.Fatalf("Exchange until HELLO = %q, %v", got, err)
	}
	if _, err := Exchange(1, "x", true, "", 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "dial 127.0.0.1:1") {
		t.Fatalf("Exchange with no server: %v", err)
	}
}
