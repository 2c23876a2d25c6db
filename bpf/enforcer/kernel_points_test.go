package enforcer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/profiles"
)

// (a) Port sets: ranges and single ports, and their negation.
func TestKernelPortSets(t *testing.T) {
	k := newKernel(t)
	ports := profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 4000, Hi: 4010}, {Lo: 5555, Hi: 5555}}}
	k.use(connectProfile(profiles.Selector{Policy: "ports", Daddr: prefixes("127.0.0.1/32"), Dport: ports,
		Action: profiles.ActionOverride}), [profiles.NumPoints]uint32{})
	for port, want := range map[int]syscall.Errno{4005: unix.EPERM, 4000: unix.EPERM, 4010: unix.EPERM, 5555: unix.EPERM,
		4011: unix.ECONNREFUSED, 3999: unix.ECONNREFUSED, 5556: unix.ECONNREFUSED} {
		pid, errno := k.helper("connect", "tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		wantErrno(t, fmt.Sprintf("connect to %d", port), errno, want)
		if want == unix.EPERM {
			ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]
			if ev.Dport != uint16(port) || ev.Daddr != netip.MustParseAddr("127.0.0.1") || !ev.Enforced || ev.Errno != 1 ||
				ev.Action != profiles.ActionOverride || ev.Profile != k.id || ev.Family != unix.AF_INET ||
				ev.Protocol != unix.IPPROTO_TCP || ev.SockType != unix.SOCK_STREAM {
				t.Fatalf("event for %d: %+v", port, ev)
			}
		} else {
			k.log.wait(t, 0, of(pid, profiles.PointConnect))
		}
	}
	// The same ports on another address are not the selector's.
	_, errno := k.helper("connect", "tcp4", "127.0.0.3:4005")
	wantErrno(t, "connect to 127.0.0.3:4005", errno, unix.ECONNREFUSED)

	// NotDport: everything but the set.
	ports.Not = true
	k.use(connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.1/32"), Dport: ports, Action: profiles.ActionOverride}),
		[profiles.NumPoints]uint32{})
	for port, want := range map[int]syscall.Errno{4005: unix.ECONNREFUSED, 5555: unix.ECONNREFUSED, 4011: unix.EPERM, 80: unix.EPERM} {
		pid, errno := k.helper("connect", "tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		wantErrno(t, fmt.Sprintf("NotDport: connect to %d", port), errno, want)
		n := 0
		if want != unix.ECONNREFUSED {
			n = 1
		}
		if evs := k.log.wait(t, n, of(pid, profiles.PointConnect)); n == 1 && (evs[0].Errno != int32(unix.EPERM) || evs[0].Dport != uint16(port)) {
			t.Fatalf("NotDport event %+v", evs[0])
		}
	}
	// IPv6 socket to the v4-mapped address: the v4 rules apply.
	_, errno = k.helper("connect", "tcp6", "[::ffff:127.0.0.1]:4011")
	wantErrno(t, "v6 socket to ::ffff:127.0.0.1:4011", errno, unix.EPERM)
}

// (b) Groups: every group acts on its first matching selector.
func TestKernelGroups(t *testing.T) {
	k := newKernel(t)
	k.use(connectProfile(
		profiles.Selector{Policy: "audit", Call: "tcp_connect", Group: 0, Action: profiles.ActionPost},
		profiles.Selector{Policy: "block", Call: "tcp_connect", Group: 1, Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionOverride},
	), [profiles.NumPoints]uint32{})
	pid, errno := k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(t, "connect to 127.0.0.2", errno, unix.EPERM)
	evs := k.log.wait(t, 2, of(pid, profiles.PointConnect))
	if evs[0].Group != 0 || evs[0].Selector != 0 || evs[0].Action != profiles.ActionPost || evs[0].Enforced {
		t.Fatalf("group 0 event %+v", evs[0])
	}
	if evs[1].Group != 1 || evs[1].Selector != 1 || evs[1].Action != profiles.ActionOverride || !evs[1].Enforced || evs[1].Errno != 1 {
		t.Fatalf("group 1 event %+v", evs[1])
	}
	// Only group 0 matches elsewhere.
	pid, errno = k.helper("connect", "tcp4", "127.0.0.1:4444")
	wantErrno(t, "connect to 127.0.0.1", errno, unix.ECONNREFUSED)
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.Group != 0 || ev.Selector != 0 {
		t.Fatalf("event %+v", ev)
	}

	// Within a group the first match decides: a Post before an Override
	// lets the connect through.
	k.use(connectProfile(
		profiles.Selector{Policy: "a", Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionPost},
		profiles.Selector{Policy: "a", Action: profiles.ActionOverride},
	), [profiles.NumPoints]uint32{})
	pid, errno = k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(t, "first match is Post", errno, unix.ECONNREFUSED)
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.Selector != 0 || ev.Action != profiles.ActionPost {
		t.Fatalf("event %+v", ev)
	}
	pid, errno = k.helper("connect", "tcp4", "127.0.0.1:4444")
	wantErrno(t, "second selector", errno, unix.EPERM)
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.Selector != 1 || !ev.Enforced {
		t.Fatalf("event %+v", ev)
	}

	// A NoPost first match acts silently and ends its group; other
	// groups still report.
	k.use(connectProfile(
		profiles.Selector{Policy: "quiet", Group: 0, Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionOverride, NoPost: true},
		profiles.Selector{Policy: "quiet", Group: 0, Action: profiles.ActionPost},
		profiles.Selector{Policy: "loud", Group: 1, Action: profiles.ActionPost},
	), [profiles.NumPoints]uint32{})
	pid, errno = k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(t, "NoPost Override", errno, unix.EPERM)
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.Group != 1 || ev.Selector != 2 {
		t.Fatalf("event %+v, want only group 1's", ev)
	}
	pid, errno = k.helper("connect", "tcp4", "127.0.0.1:4444")
	wantErrno(t, "no NoPost match", errno, unix.ECONNREFUSED)
	evs = k.log.wait(t, 2, of(pid, profiles.PointConnect))
	if evs[0].Selector != 1 || evs[1].Selector != 2 {
		t.Fatalf("events %s", dumpEvents(evs))
	}
	c, err := k.e.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Points["connect"]; p.Denied < 2 || p.Posted < 4 {
		t.Fatalf("connect counters %+v", p)
	}
}

// A decision looks a destination up once per address set: selectors with
// equal lists share the answer, each decision asks again, and another
// set is its own question.
func TestKernelAddressSetLookups(t *testing.T) {
	k := newKernel(t)
	// Equal lists, one set: the Post matches what the Override does not.
	k.use(connectProfile(
		profiles.Selector{Policy: "out", Group: 0, Daddr: profiles.AddrMatch{Prefixes: prefixes("127.0.0.2/32").Prefixes, Not: true},
			Action: profiles.ActionPost},
		profiles.Selector{Policy: "in", Group: 1, Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionOverride},
	), [profiles.NumPoints]uint32{})
	for i := 0; i < 2; i++ { // alternating: no answer carries over
		pid, errno := k.helper("connect", "tcp4", "127.0.0.2:4444")
		wantErrno(t, "connect to the set", errno, unix.EPERM)
		if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.Selector != 1 || !ev.Enforced {
			t.Fatalf("in the set: event %+v", ev)
		}
		pid, errno = k.helper("connect", "tcp4", "127.0.0.1:4444")
		wantErrno(t, "connect outside the set", errno, unix.ECONNREFUSED)
		if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.Selector != 0 || ev.Enforced {
			t.Fatalf("outside the set: event %+v", ev)
		}
	}
	// Different lists: the second selector's set is looked up, not the
	// first one's answer reused.
	k.use(connectProfile(
		profiles.Selector{Policy: "a", Group: 0, Daddr: prefixes("10.0.0.0/8"), Action: profiles.ActionPost},
		profiles.Selector{Policy: "b", Group: 1, Daddr: prefixes("127.0.0.0/8"), Action: profiles.ActionOverride},
	), [profiles.NumPoints]uint32{})
	pid, errno := k.helper("connect", "tcp4", "127.0.0.1:4444")
	wantErrno(t, "second set", errno, unix.EPERM)
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.Selector != 1 {
		t.Fatalf("second set: event %+v", ev)
	}
}

// (c) Monitor, per selector and per workload.
func TestKernelMonitor(t *testing.T) {
	k := newKernel(t)
	k.use(connectProfile(profiles.Selector{Policy: "watch", Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionOverride, Monitor: true},
		profiles.Selector{Policy: "enforce", Group: 1, Daddr: prefixes("127.0.0.3/32"), Action: profiles.ActionOverride}),
		[profiles.NumPoints]uint32{})
	pid, errno := k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(t, "monitor selector", errno, unix.ECONNREFUSED)
	ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]
	if !ev.Monitor || ev.Enforced || ev.Errno != 0 || ev.Action != profiles.ActionOverride {
		t.Fatalf("monitor event %+v", ev)
	}
	// The other selector still enforces.
	pid, errno = k.helper("connect", "tcp4", "127.0.0.3:4444")
	wantErrno(t, "enforcing selector", errno, unix.EPERM)
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.Monitor || !ev.Enforced {
		t.Fatalf("enforce event %+v", ev)
	}
	// A monitor workload enforces nothing; Sigkill too is only reported.
	p := connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.3/32"), Action: profiles.ActionSigkill})
	p.Mode = profiles.ModeMonitor
	k.use(p, [profiles.NumPoints]uint32{})
	pid, errno = k.helper("connect", "tcp4", "127.0.0.3:4444")
	wantErrno(t, "monitor workload", errno, unix.ECONNREFUSED)
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; !ev.Monitor || ev.Enforced || ev.KillPending || ev.Killed {
		t.Fatalf("monitor workload event %+v", ev)
	}
	// A Post is not a would-be denial.
	k.use(connectProfile(profiles.Selector{Action: profiles.ActionPost, Monitor: true}), [profiles.NumPoints]uint32{})
	pid, _ = k.helper("connect", "tcp4", "127.0.0.3:4444")
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.Monitor || ev.Enforced {
		t.Fatalf("monitor post event %+v", ev)
	}
}

// (e) The disabled mask turns selectors off for one workload.
func TestKernelDisabledSelectors(t *testing.T) {
	k := newKernel(t)
	p := connectProfile(
		profiles.Selector{Policy: "deny", Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionOverride},
		profiles.Selector{Policy: "deny", Action: profiles.ActionPost},
	)
	var disabled [profiles.NumPoints]uint32
	disabled[profiles.PointConnect] = 1 << 0
	k.use(p, disabled)
	pid, errno := k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(t, "denying selector disabled", errno, unix.ECONNREFUSED)
	// The group's next selector takes over.
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.Selector != 1 || ev.Enforced {
		t.Fatalf("event %+v", ev)
	}
	// Both off: nothing happens.
	disabled[profiles.PointConnect] = 0b11
	k.use(p, disabled)
	pid, errno = k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(t, "all disabled", errno, unix.ECONNREFUSED)
	k.log.wait(t, 0, of(pid, profiles.PointConnect))
	// A mask for another point changes nothing here.
	disabled = [profiles.NumPoints]uint32{}
	disabled[profiles.PointSendmsg] = 0b11
	disabled[profiles.PointClose] = 0b11
	k.use(p, disabled)
	pid, errno = k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(t, "other point disabled", errno, unix.EPERM)
	k.log.wait(t, 1, of(pid, profiles.PointConnect))
}

// (f) UDP sends and binds; bind reports the local address.
func TestKernelSendmsgAndBind(t *testing.T) {
	k := newKernel(t)
	p := &profiles.Profile{Name: "udp-bind", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointSendmsg] = []profiles.Selector{{Policy: "dns", Call: "security_socket_sendmsg",
		Daddr: prefixes("127.0.0.2/32"), Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 53, Hi: 53}}},
		Protocols: []uint8{unix.IPPROTO_UDP}, Action: profiles.ActionOverride}}
	p.Points[profiles.PointBind] = []profiles.Selector{{Policy: "no-4444", Call: "security_socket_bind",
		Sport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 4444, Hi: 4444}}}, Action: profiles.ActionOverride},
		{Policy: "no-4444", Call: "security_socket_bind", Saddr: prefixes("127.0.0.3/32"), Action: profiles.ActionOverride}}
	k.use(p, [profiles.NumPoints]uint32{})

	pid, errno := k.helper("sendto", "udp4", "127.0.0.2:53")
	wantErrno(t, "sendto 127.0.0.2:53", errno, unix.EPERM)
	ev := k.log.wait(t, 1, of(pid, profiles.PointSendmsg))[0]
	if ev.Daddr != netip.MustParseAddr("127.0.0.2") || ev.Dport != 53 || ev.Protocol != unix.IPPROTO_UDP ||
		ev.SockType != unix.SOCK_DGRAM || !ev.Enforced || ev.Mechanism != "cgroup_sock_addr" {
		t.Fatalf("sendmsg event %+v", ev)
	}
	pid, errno = k.helper("sendto", "udp4", "127.0.0.2:54")
	wantErrno(t, "sendto 127.0.0.2:54", errno, 0)
	k.log.wait(t, 0, of(pid, profiles.PointSendmsg))

	pid, errno = k.helper("bind", "tcp4", "127.0.0.1:4444")
	wantErrno(t, "bind 127.0.0.1:4444", errno, unix.EPERM)
	ev = k.log.wait(t, 1, of(pid, profiles.PointBind))[0]
	if ev.Saddr != netip.MustParseAddr("127.0.0.1") || ev.Sport != 4444 || ev.HasAddr || ev.Daddr.IsValid() || ev.Dport != 0 ||
		!ev.Enforced || ev.Selector != 0 {
		t.Fatalf("bind event %+v", ev)
	}
	pid, errno = k.helper("bind", "udp6", "[::1]:4444")
	wantErrno(t, "bind [::1]:4444", errno, unix.EPERM)
	if ev := k.log.wait(t, 1, of(pid, profiles.PointBind))[0]; ev.Saddr != netip.IPv6Loopback() || ev.Sport != 4444 || ev.Family != unix.AF_INET6 {
		t.Fatalf("bind6 event %+v", ev)
	}
	pid, errno = k.helper("bind", "tcp4", "127.0.0.3:0")
	wantErrno(t, "bind 127.0.0.3:0", errno, unix.EPERM)
	if ev := k.log.wait(t, 1, of(pid, profiles.PointBind))[0]; ev.Saddr != netip.MustParseAddr("127.0.0.3") || ev.Selector != 1 {
		t.Fatalf("bind event %+v", ev)
	}
	pid, errno = k.helper("bind", "tcp4", "127.0.0.1:0")
	wantErrno(t, "bind 127.0.0.1:0", errno, 0)
	k.log.wait(t, 0, of(pid, profiles.PointBind))
}

// (g) The close point reports a TCP socket's close with its peer.
func TestKernelClose(t *testing.T) {
	k := newKernel(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Accepted connections stay open until the test ends: the client
	// closes an established socket.
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	defer func() {
		ln.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	p := &profiles.Profile{Name: "close", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointClose] = []profiles.Selector{{Policy: "closes", Call: "tcp_close",
		Protocols: []uint8{unix.IPPROTO_TCP}, Action: profiles.ActionPost}}
	k.use(p, [profiles.NumPoints]uint32{})

	pid, errno := k.helper("connect", "tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	wantErrno(t, "connect to the listener", errno, 0)
	ev := k.log.wait(t, 1, of(pid, profiles.PointClose))[0]
	if ev.Daddr != netip.MustParseAddr("127.0.0.1") || ev.Dport != uint16(port) || !ev.HasAddr || ev.Protocol != unix.IPPROTO_TCP ||
		ev.Family != unix.AF_INET || ev.Enforced || ev.Action != profiles.ActionPost || ev.WorkloadCgroupID != k.cg {
		t.Fatalf("close event %+v", ev)
	}
	if ev.State != 1 { // TCP_ESTABLISHED: the socket is released before tcp_close
		t.Errorf("close event state %d, want TCP_ESTABLISHED", ev.State)
	}
	// UDP sockets do not match the selector.
	pid, _ = k.helper("sendto", "udp4", "127.0.0.1:9")
	k.log.wait(t, 0, of(pid, profiles.PointClose))
}

// (h) Signal actions in a cgroup program: it cannot signal, the event
// asks the agent to.
func TestKernelSignalPending(t *testing.T) {
	k := newKernel(t)
	k.use(connectProfile(profiles.Selector{Policy: "sig", Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionSignal,
		Signal: int(unix.SIGUSR1)}), [profiles.NumPoints]uint32{})
	// The helper would die of a SIGUSR1 sent in the kernel.
	pid, errno := k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(t, "Signal action", errno, unix.ECONNREFUSED)
	ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]
	if !ev.SignalPending || ev.Signal != int(unix.SIGUSR1) || ev.Action != profiles.ActionSignal || ev.Enforced || ev.KillPending {
		t.Fatalf("signal event %+v", ev)
	}
	// NotifyEnforcer: deny, and the signal is left to the agent.
	k.use(connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionNotifyEnforcer,
		Signal: int(unix.SIGUSR2)}), [profiles.NumPoints]uint32{})
	pid, errno = k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(t, "NotifyEnforcer", errno, unix.EPERM)
	ev = k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]
	if !ev.SignalPending || ev.Signal != int(unix.SIGUSR2) || !ev.Enforced || ev.Errno != int32(unix.EPERM) || ev.Action != profiles.ActionOverride {
		t.Fatalf("NotifyEnforcer event %+v", ev)
	}
	// Sigkill: denied here, the kill is left to the agent.
	k.use(connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionSigkill}), [profiles.NumPoints]uint32{})
	pid, errno = k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(t, "Sigkill", errno, unix.EPERM)
	ev = k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]
	if !ev.KillPending || ev.Killed || !ev.Enforced || ev.SignalPending || ev.Action != profiles.ActionSigkill {
		t.Fatalf("Sigkill event %+v", ev)
	}
	// In monitor mode no signal is asked for.
	k.use(connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionSignal,
		Signal: int(unix.SIGUSR1), Monitor: true}), [profiles.NumPoints]uint32{})
	pid, _ = k.helper("connect", "tcp4", "127.0.0.2:4444")
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.SignalPending {
		t.Fatalf("monitor signal event %+v", ev)
	}
}

// Override's errno: the caller gets it, and the event reports what the
// caller got.
func TestKernelOverrideErrno(t *testing.T) {
	k := newKernel(t)
	p := connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionOverride, Errno: int(unix.EACCES)})
	p.Points[profiles.PointBind] = []profiles.Selector{{Sport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 4444, Hi: 4444}}},
		Action: profiles.ActionOverride, Errno: int(unix.EADDRNOTAVAIL)}}
	k.use(p, [profiles.NumPoints]uint32{})
	for _, c := range []struct {
		op, network, addr string
		point             profiles.Point
		want              syscall.Errno
	}{
		{"connect", "tcp4", "127.0.0.2:4444", profiles.PointConnect, unix.EACCES},
		{"bind", "tcp4", "127.0.0.1:4444", profiles.PointBind, unix.EADDRNOTAVAIL},
	} {
		pid, errno := k.helper(c.op, c.network, c.addr)
		ev := k.log.wait(t, 1, of(pid, c.point))[0]
		if errno != c.want {
			t.Errorf("%s %s: the caller got errno %d (%v), the profile says %d (%v)", c.op, c.addr, int(errno), errno, int(c.want), c.want)
		}
		if ev.Errno != int32(errno) {
			t.Errorf("%s %s: the event reports errno %d, the caller got %d (%v)", c.op, c.addr, ev.Errno, int(errno), errno)
		}
	}
}

// A workload covers its cgroup's descendants; the closest registered
// ancestor decides.
func TestKernelNestedCgroups(t *testing.T) {
	k := newKernel(t) // k.dir: P, with the denying profile
	k.use(connectProfile(profiles.Selector{Policy: "deny", Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionOverride}),
		[profiles.NumPoints]uint32{})
	mkdir := func(path string) (string, uint64, int) {
		t.Helper()
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for i := 0; i < 100 && os.Remove(path) != nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		})
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return path, st.Ino, fd
	}
	_, xID, xFD := mkdir(filepath.Join(k.dir, "x"))
	q, qID, _ := mkdir(filepath.Join(k.dir, "q"))
	_, rID, rFD := mkdir(filepath.Join(q, "r"))
	// Q gets a profile of its own: report only.
	postID := k.id + 1000
	if err := k.e.LoadProfile(postID, connectProfile(profiles.Selector{Policy: "post", Action: profiles.ActionPost})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.e.UnloadProfile(postID) })
	if err := k.e.SetWorkload(qID, postID, profiles.ModeEnforce, [profiles.NumPoints]uint32{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.e.RemoveWorkload(qID) })

	run := func(fd int) (int, syscall.Errno) {
		t.Helper()
		saved := k.cgFD
		k.cgFD = fd
		defer func() { k.cgFD = saved }()
		return k.helper("connect", "tcp4", "127.0.0.2:4444")
	}
	all := func(pid int) func(*record.RawEvent) bool {
		return func(ev *record.RawEvent) bool { return ev.Tgid == uint32(pid) && ev.Point == profiles.PointConnect }
	}
	pid, errno := run(xFD)
	wantErrno(t, "P/x", errno, unix.EPERM)
	if ev := (eventView{l: shared.log, from: k.log.from, cg: k.cg}).wait(t, 1, all(pid))[0]; ev.CgroupID != xID || ev.Profile != k.id {
		t.Fatalf("P/x event %+v", ev)
	}
	pid, errno = run(rFD)
	wantErrno(t, "P/q/r", errno, unix.ECONNREFUSED)
	if ev := (eventView{l: shared.log, from: k.log.from, cg: qID}).wait(t, 1, all(pid))[0]; ev.CgroupID != rID || ev.Profile != postID || ev.Action != profiles.ActionPost {
		t.Fatalf("P/q/r event %+v", ev)
	}
}

// A workload process that moves itself to a cgroup outside the workload
// (a container allowed to write cgroup.procs) stays covered: exec
// tracking recorded its workload, and its children inherit it.
func TestKernelMovedOutStaysCovered(t *testing.T) {
	bb := busyboxPaths(t)
	k := newKernel(t)
	k.use(connectProfile(profiles.Selector{Policy: "deny", Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionOverride}),
		[profiles.NumPoints]uint32{})
	outside := filepath.Join(shared.root, fmt.Sprintf("ocigate-unit-%d-outside", os.Getpid()))
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 100 && os.Remove(outside) != nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	script := "echo $$ > " + filepath.Join(outside, "cgroup.procs") + " && exec " + bb.real + " nc -w1 127.0.0.2 4444"
	cmd := k.command(ctx, bb.real, "sh", "-c", script)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Operation not permitted") {
		t.Fatalf("connect after leaving the workload's cgroup: %v %q, want EPERM", err, out)
	}
	ev := k.log.wait(t, 1, of(cmd.Process.Pid, profiles.PointConnect))[0]
	if ev.WorkloadCgroupID != k.cg || !ev.Enforced {
		t.Fatalf("event %+v", ev)
	}
	// The same from a process that never belonged to the workload: untouched.
	other := exec.CommandContext(ctx, bb.real, "sh", "-c", "echo $$ > "+filepath.Join(outside, "cgroup.procs")+" && exec "+bb.real+" nc -w1 127.0.0.2 4444")
	out, _ = other.CombinedOutput()
	if !strings.Contains(string(out), "Connection refused") {
		t.Fatalf("a process outside any workload: %q, want Connection refused", out)
	}
}

// (g2) sock_release decides only where the workload has rules at close,
// but untracks every socket: a tracked socket of a workload without
// close rules leaves sock_owners when it is released.
func TestKernelReleaseUntracksWithoutCloseRules(t *testing.T) {
	k := newKernel(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := connectProfile(profiles.Selector{Policy: "connects", Call: "tcp_connect", Action: profiles.ActionPost})
	p.TrackSockets = true
	k.use(p, [profiles.NumPoints]uint32{})

	pid, errno := k.helper("connect", "tcp4", ln.Addr().String())
	wantErrno(t, "connect to the listener", errno, 0)
	// The connect's event names the socket's creator: it was tracked.
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.Owner != uint32(pid) {
		t.Fatalf("connect event owner %d, want the helper %d: the socket was not tracked", ev.Owner, pid)
	}
	var cookie uint64
	var owner uint32
	for it := k.e.maps.SockOwners.Iterate(); it.Next(&cookie, &owner); {
		if owner == uint32(pid) {
			t.Errorf("sock_owners still holds socket %d of the helper %d after its release", cookie, pid)
		}
	}
}
