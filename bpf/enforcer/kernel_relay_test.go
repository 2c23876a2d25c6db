package enforcer

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/profiles"
)

// relayProfile kills relayed shells (dash, bash) as the default profile does.
func relayProfile(mode profiles.Mode) *profiles.Profile {
	p := &profiles.Profile{Name: "relay", Mode: mode}
	p.Points[profiles.PointRelay] = []profiles.Selector{{Policy: "relayed-shell", Call: "security_bprm_check",
		Names: profiles.NameMatch{Names: []string{"sh", "dash", "bash"}}, Relayed: true, Action: profiles.ActionSigkill}}
	return p
}

// relayListener accepts on the loopback and counts connections.
func relayListener(t *testing.T) (port int, conns func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n <- struct{}{}
			defer c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port, func() int { return len(n) }
}

func isRelay(ev *record.RawEvent) bool { return ev.Point == profiles.PointRelay }

// shellFile is the file /bin/sh runs (dash on Debian).
func shellFile(t *testing.T) string {
	t.Helper()
	p, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A shell whose stdout a connecting process reads: recognised at the
// shell's exec when the peer connected first, at the peer's connect when
// the shell came first. A shell run with -c is no relay.
func TestKernelRelayedShellPipe(t *testing.T) {
	testenv.NeedTools(t, "nc.traditional", "sleep")
	k := newKernel(t)
	k.use(relayProfile(profiles.ModeEnforce), [profiles.NumPoints]uint32{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("peer-first", func(t *testing.T) {
		port, conns := relayListener(t)
		k.log.from = k.log.l.len()
		script := fmt.Sprintf("sleep 3 | { sleep 0.5; exec /bin/sh -i; } 2>&1 | nc.traditional -q0 127.0.0.1 %d", port)
		out, _ := k.command(ctx, "/bin/sh", "-c", script).CombinedOutput()
		ev := k.log.wait(t, 1, isRelay)[0]
		if !ev.Killed || ev.Relay != record.RelayPipe || ev.Path != shellFile(t) || ev.Peer == 0 {
			t.Fatalf("relay event %+v (output %q)", ev, out)
		}
		if conns() != 1 {
			t.Errorf("the peer connected first: want 1 connection, got %d", conns())
		}
	})
	t.Run("shell-first", func(t *testing.T) {
		port, conns := relayListener(t)
		k.log.from = k.log.l.len()
		script := fmt.Sprintf("sleep 3 | /bin/sh -i 2>&1 | { sleep 0.5; exec nc.traditional -q0 127.0.0.1 %d; }", port)
		out, _ := k.command(ctx, "/bin/sh", "-c", script).CombinedOutput()
		ev := k.log.wait(t, 1, isRelay)[0]
		if !ev.KillPending || !ev.Enforced || ev.Relay != record.RelayPipe|record.RelayAtConnect || ev.Path != shellFile(t) || ev.Peer == 0 {
			t.Fatalf("relay event %+v (output %q)", ev, out)
		}
		if conns() != 0 {
			t.Errorf("the peer's connect must be refused: %d connections", conns())
		}
	})
	t.Run("not-a-relay", func(t *testing.T) {
		port, _ := relayListener(t)
		k.log.from = k.log.l.len()
		script := fmt.Sprintf("sleep 1 | /bin/sh -c 'echo hi' 2>&1 | nc.traditional -q0 127.0.0.1 %d", port)
		if out, err := k.command(ctx, "/bin/sh", "-c", script).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		k.log.wait(t, 0, isRelay)
	})
}

// ncat -e: the shell's parent connected and relays through pipes.
func TestKernelRelayedShellParent(t *testing.T) {
	testenv.NeedTools(t, "ncat")
	k := newKernel(t)
	k.use(relayProfile(profiles.ModeEnforce), [profiles.NumPoints]uint32{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	port, _ := relayListener(t)
	out, _ := k.command(ctx, "ncat", "-e", "/bin/sh", "127.0.0.1", strconv.Itoa(port)).CombinedOutput()
	ev := k.log.wait(t, 1, isRelay)[0]
	if !ev.Killed || ev.Relay != record.RelayParent || ev.Path != shellFile(t) || ev.Peer == 0 {
		t.Fatalf("relay event %+v (output %q)", ev, out)
	}
}
