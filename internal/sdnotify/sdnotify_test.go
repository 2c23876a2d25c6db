package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// manager is a service manager's notify socket: it returns what it
// receives, one datagram per call.
func manager(t *testing.T, name string) func() string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("manager at %s: %v", name, err)
		}
		return string(buf[:n])
	}
}

// READY and STOPPING reach a socket given as a path and one in the
// abstract namespace (@name), each as one datagram.
func TestSend(t *testing.T) {
	for _, socket := range []string{
		filepath.Join(t.TempDir(), "notify.sock"),
		fmt.Sprintf("@ocigate-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano()),
	} {
		recv := manager(t, socket) // Go's net takes a leading @ as abstract, like systemd
		t.Setenv(EnvSocket, socket)
		n, err := FromEnv()
		if err != nil || n == nil {
			t.Fatalf("FromEnv with %s=%s: %v, %v", EnvSocket, socket, n, err)
		}
		if v, set := os.LookupEnv(EnvSocket); set {
			t.Errorf("FromEnv left %s=%s for the agent's children", EnvSocket, v)
		}
		if err := n.Send("READY=1", "STATUS=enforcing, ready after 512ms"); err != nil {
			t.Fatal(err)
		}
		if got, want := recv(), "READY=1\nSTATUS=enforcing, ready after 512ms"; got != want {
			t.Errorf("%s received %q, want %q", socket, got, want)
		}
		if err := n.Send("STOPPING=1"); err != nil {
			t.Fatal(err)
		}
		if got := recv(); got != "STOPPING=1" {
			t.Errorf("%s received %q, want STOPPING=1", socket, got)
		}
	}
}

// Without NOTIFY_SOCKET nothing is sent, and that is no error.
func TestUnset(t *testing.T) {
	t.Setenv(EnvSocket, "")
	n, err := FromEnv()
	if err != nil || n != nil {
		t.Fatalf("FromEnv without %s: %v, %v", EnvSocket, n, err)
	}
	if err := n.Send("READY=1"); err != nil {
		t.Fatalf("nil Notifier: %v", err)
	}
}

func TestErrors(t *testing.T) {
	for _, socket := range []string{"relative.sock", "@", "vsock:2:1234"} {
		if _, err := New(socket); err == nil || !strings.Contains(err.Error(), "want an absolute path or @name") {
			t.Errorf("New(%q): %v", socket, err)
		}
	}
	gone := filepath.Join(t.TempDir(), "gone.sock")
	n, err := New(gone)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Send("READY=1"); err == nil || !strings.Contains(err.Error(), gone) {
		t.Errorf("Send to a missing socket: %v, want an error naming it", err)
	}
	if err := n.Send("READY=1\nMAINPID=1"); err == nil || !strings.Contains(err.Error(), "one VAR=VALUE line") {
		t.Errorf("Send of two lines in one assignment: %v", err)
	}
}
