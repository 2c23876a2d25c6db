package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/sdnotify"
)

func TestStartTicks(t *testing.T) {
	// A command name with spaces and parentheses, as a process may set.
	const stat = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000000 200 18446744073709551615"
	if got, err := startTicks(stat); err != nil || got != 987654 {
		t.Fatalf("startTicks = %d, %v; want 987654", got, err)
	}
	for _, bad := range []string{"4242 no name S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 soon 1"} {
		if _, err := startTicks(bad); err == nil {
			t.Errorf("startTicks(%q): no error", bad)
		}
	}
}

// This test binary started before the test ran, and not long before.
func TestProcessStart(t *testing.T) {
	start := processStart()
	if since := time.Since(start); since < 0 || since > 10*time.Minute {
		t.Fatalf("process started %v ago?", since)
	}
	if start.After(mainInit.Add(10 * time.Millisecond)) { // /proc's start is to 10 ms
		t.Fatalf("process start %v is after package init %v", start, mainInit)
	}
}

// The ready line says how long the agent took and whether it loaded its
// programs, and the service manager hears READY=1 with the same.
func TestAnnounceReady(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	mgr, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	notifier, err := sdnotify.New(sock)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pins *enforcer.PinState
		want string
	}{{nil, "loaded"}, {&enforcer.PinState{Dir: "/sys/fs/bpf/x"}, "loaded"}, {&enforcer.PinState{Dir: "/sys/fs/bpf/x", Reused: true}, "reused"}} {
		core, logs := observer.New(zapcore.InfoLevel)
		announceReady(zap.New(core), notifier, "/run/x.sock", "/sys/fs/cgroup", "complete", c.pins, time.Now().Add(-1500*time.Millisecond))
		entries := logs.FilterMessage("agent ready").All()
		if len(entries) != 1 {
			t.Fatalf("logged %v, want one agent ready", logs.All())
		}
		fields := entries[0].ContextMap()
		if d, ok := fields["ready_after"].(time.Duration); !ok || d < 1500*time.Millisecond || d > time.Minute {
			t.Errorf("ready_after = %v, want about 1.5s", fields["ready_after"])
		}
		if fields["programs"] != c.want || fields["socket"] != "/run/x.sock" || fields["pid"] != int64(os.Getpid()) {
			t.Errorf("pins %+v: fields %v, want programs=%s", c.pins, fields, c.want)
		}
		buf := make([]byte, 1024)
		_ = mgr.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := mgr.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, "READY=1\nSTATUS=enforcement complete; ready after 1.5") || !strings.Contains(msg, "programs "+c.want+"; API on /run/x.sock") {
			t.Errorf("service manager got %q", msg)
		}
	}
	announceStopping(zap.NewNop(), notifier)
	buf := make([]byte, 1024)
	n, err := mgr.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "STOPPING=1\n") {
		t.Errorf("at shutdown the service manager got %q, %v", buf[:n], err)
	}
}
