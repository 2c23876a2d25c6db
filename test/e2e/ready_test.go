package e2e

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// notifyManager is a service manager's NOTIFY_SOCKET: a unixgram socket
// in the test's directory.
type notifyManager struct {
	path string
	conn *net.UnixConn
}

func newNotifyManager(t *testing.T) *notifyManager {
	t.Helper()
	m := &notifyManager{path: filepath.Join(t.TempDir(), "notify.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: m.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	m.conn = conn
	t.Cleanup(func() { conn.Close() })
	return m
}

// next returns the next notification, waiting up to within.
func (m *notifyManager) next(t *testing.T, within time.Duration) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = m.conn.SetReadDeadline(time.Now().Add(within))
	n, err := m.conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification on %s: %v", m.path, err)
	}
	return string(buf[:n])
}

var readyLine = regexp.MustCompile(`agent ready.*"ready_after": ([0-9.]+).*"programs": "([a-z]+)"`)

// lastReady returns ready_after and programs of the agent's last
// "agent ready" line.
func (a *ownAgent) lastReady(t *testing.T) (time.Duration, string) {
	t.Helper()
	data, err := os.ReadFile(a.log)
	if err != nil {
		t.Fatal(err)
	}
	all := readyLine.FindAllStringSubmatch(string(data), -1)
	if len(all) == 0 {
		t.Fatalf("no agent ready line with ready_after and programs:\n%s", agentlog.Tail(a.log, 20))
	}
	last := all[len(all)-1]
	secs, err := strconv.ParseFloat(last[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(secs * float64(time.Second)), last[2]
}

// An agent is ready when it answers: its first answer lists every point's
// backend. It logs how long it took from its process start and whether
// it loaded its programs or took the pinned ones over; a service manager
// (NOTIFY_SOCKET) hears READY=1 before the first answer and STOPPING=1 at
// SIGTERM.
func TestAgentReadiness(t *testing.T) {
	requireE2E(t)
	mgr := newNotifyManager(t)
	a := startOwnAgent(t, "ready", "NOTIFY_SOCKET="+mgr.path)
	st := a.mustStatus()
	if len(st.Backends) == 0 {
		t.Fatalf("the first answer lists no backends: %+v", st)
	}
	for _, b := range st.Backends {
		if b.Backend == "" {
			t.Errorf("point %s has no backend at the first answer", b.Point)
		}
	}
	for start, want := range []string{"loaded", "reused"} {
		if start > 0 {
			if err := a.stop(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if msg := mgr.next(t, time.Second); !strings.HasPrefix(msg, "STOPPING=1") {
				t.Errorf("at SIGTERM the service manager got %q", msg)
			}
			a.start()
		}
		msg := mgr.next(t, time.Second) // sent before the first answer
		if !strings.HasPrefix(msg, "READY=1\nSTATUS=enforcement complete; ready after ") || !strings.Contains(msg, "programs "+want) {
			t.Errorf("start %d: the service manager got %q, want READY=1 with programs %s", start+1, msg, want)
		}
		after, programs := a.lastReady(t)
		t.Logf("start %d: ready after %v, programs %s", start+1, after, programs)
		if programs != want || after <= 0 || after > 30*time.Second {
			t.Errorf("start %d: ready after %v, programs %s; want programs %s", start+1, after, programs, want)
		}
	}
}
