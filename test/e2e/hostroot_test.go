package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv"
)

// hostTools are the programs of the host root the technique and escape
// tests run (scripts/deps.sh installs them), as seen inside the container.
var hostTools = []string{
	"/usr/bin/bash", "/usr/bin/dash", "/usr/bin/sh", "/usr/bin/python3", "/usr/bin/perl",
	"/usr/bin/openssl", "/usr/bin/socat", "/usr/bin/ncat", "/usr/bin/nc.traditional", "/usr/bin/nc",
	"/usr/bin/mkfifo", "/usr/bin/tr", "/usr/bin/cat", "/usr/bin/cp", "/usr/bin/rm", "/usr/bin/grep",
	"/usr/bin/unshare", ldso,
}

// ldso is the x86-64 dynamic loader (TestEscapeThroughLdSo runs bash
// through it), at the path the ABI fixes.
const ldso = "/lib64/ld-linux-x86-64.so.2"

var (
	hostRootOnce sync.Once
	hostRootDir  string
	hostRootErr  error
)

// hostRootfs returns the shared host-root rootfs (testenv.BuildHostRoot),
// building it on first use; ctrOpts.HostRoot runs containers on it. Tests
// call needHostRoot first, which fails them if it could not be built.
func hostRootfs() string {
	hostRootOnce.Do(func() {
		hostRootDir = filepath.Join(workDir, "hostroot")
		hostRootErr = testenv.BuildHostRoot(hostRootDir)
	})
	return hostRootDir
}

// needHostRoot skips without OCIGATE_E2E=1, and fails the test if the
// host root cannot be built or the host lacks one of hostTools.
func needHostRoot(t *testing.T) {
	t.Helper()
	requireE2E(t)
	hostRootfs()
	if hostRootErr != nil {
		t.Fatal(hostRootErr)
	}
	testenv.NeedTools(t, hostTools...)
}

// shellListener is the attacker's end of a reverse shell: it types the
// greeting into whatever connects and records the answer.
type shellListener interface {
	Port() int
	WaitReceived(substr string, timeout time.Duration) bool
	Received() string
}

// udpListener is the attacker's end of a UDP reverse shell on the
// loopback. A UDP shell says nothing until it prints something (an
// interactive shell's prompt, on stderr): to each new peer that sends a
// datagram it answers with the greeting, one byte per datagram, as a shell
// may read its input a byte at a time and a short read of a datagram drops
// the rest of it.
type udpListener struct {
	conn     *net.UDPConn
	greeting []byte
	done     chan struct{}

	mu      sync.Mutex
	data    strings.Builder
	peers   map[string]bool
	changed chan struct{}
}

// listenUDP starts a udpListener and closes it at the end of the test.
func listenUDP(t *testing.T, greeting string) *udpListener {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	l := &udpListener{conn: conn, greeting: []byte(greeting), done: make(chan struct{}),
		peers: map[string]bool{}, changed: make(chan struct{})}
	go l.serve()
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		<-l.done
	})
	return l
}

func (l *udpListener) Port() int { return l.conn.LocalAddr().(*net.UDPAddr).Port }

func (l *udpListener) serve() {
	defer close(l.done)
	buf := make([]byte, 65536)
	for {
		n, peer, err := l.conn.ReadFromUDP(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(os.Stderr, "udp listener: %v\n", err)
			}
			return
		}
		l.mu.Lock()
		l.data.Write(buf[:n])
		first := !l.peers[peer.String()]
		l.peers[peer.String()] = true
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
		if first {
			for i := range l.greeting {
				_, _ = l.conn.WriteToUDP(l.greeting[i:i+1], peer)
			}
		}
	}
}

func (l *udpListener) Received() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.data.String()
}

func (l *udpListener) WaitReceived(substr string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		l.mu.Lock()
		ch, got := l.changed, strings.Contains(l.data.String(), substr)
		l.mu.Unlock()
		if got {
			return true
		}
		select {
		case <-ctx.Done():
			return strings.Contains(l.Received(), substr)
		case <-ch:
		}
	}
}

// hostShell is the file /bin/sh runs on the host root (dash on Debian):
// events name the executed file itself, symlinks resolved.
var hostShell = func() string {
	p, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		return "/bin/sh"
	}
	return p
}()
