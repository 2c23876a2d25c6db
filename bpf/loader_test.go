package bpf

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/hostfs"
	"github.com/ocigate/ocigate/profiles"
)

// helperEnv makes the test binary a helper process: it does one socket
// operation and prints its result ("ok" or "errno=N"). It is the
// "other binary" of the matchBinaries tests too.
const helperEnv = "OCIGATE_BPF_TEST_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(helperMain(spec))
	}
	code := m.Run()
	if shared.e != nil {
		shared.log.stop()
		if err := shared.e.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "Close of the shared enforcer: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// helperMain runs "OP NET ADDR:PORT": OP is connect, sendto or bind; NET
// is tcp4, tcp6, udp4 or udp6.
func helperMain(spec string) int {
	f := strings.Fields(spec)
	if len(f) != 3 {
		fmt.Fprintf(os.Stderr, "helper: bad spec %q\n", spec)
		return 2
	}
	op, network := f[0], f[1]
	ap, err := netip.ParseAddrPort(f[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper: %v\n", err)
		return 2
	}
	family, typ := unix.AF_INET, unix.SOCK_STREAM
	if strings.HasSuffix(network, "6") {
		family = unix.AF_INET6
	}
	if strings.HasPrefix(network, "udp") {
		typ = unix.SOCK_DGRAM
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := unix.Socket(family, typ, 0)
	if err == nil {
		switch op {
		case "connect":
			err = unix.Connect(fd, sa)
		case "sendto":
			err = unix.Sendto(fd, []byte("x"), 0, sa)
		case "bind":
			err = unix.Bind(fd, sa)
		default:
			fmt.Fprintf(os.Stderr, "helper: unknown op %q\n", op)
			return 2
		}
		unix.Close(fd)
	}
	var errno syscall.Errno
	switch {
	case err == nil:
		fmt.Println("ok")
	case errors.As(err, &errno):
		fmt.Printf("errno=%d\n", int(errno))
	default:
		fmt.Printf("error=%v\n", err)
	}
	return 0
}

// shared is the enforcer of the tests that load programs: the verifier
// takes half a minute over them, so they are loaded once, and one reader
// collects every event.
var shared struct {
	once sync.Once
	e    *Enforcer
	root string
	log  *eventLog
	err  error
}

// loadForTest returns the shared enforcer, loaded at the host's cgroup v2
// root, with the default profile (again) as id 1.
func loadForTest(t *testing.T) (*Enforcer, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
	shared.once.Do(func() {
		for _, m := range hostfs.Needed {
			if _, err := hostfs.Ensure(m); err != nil && !m.Optional {
				shared.err = fmt.Errorf("mount %s: %w", m.Path, err)
				return
			}
		}
		if shared.root, shared.err = cgroupfilter.V2Mount(); shared.err != nil {
			return
		}
		start := time.Now()
		if shared.e, shared.err = Load(Options{CgroupRoot: shared.root}); shared.err != nil {
			return
		}
		t.Logf("Load took %v", time.Since(start))
		shared.log, shared.err = startEventLog(shared.e)
	})
	if shared.err != nil {
		t.Fatalf("Load: %v", shared.err)
	}
	if err := shared.e.LoadProfile(1, profiles.Default()); err != nil {
		t.Fatalf("LoadProfile: %v", err)
	}
	return shared.e, shared.root
}

// testCgroup creates a cgroup under root and returns its path and ID.
func testCgroup(t *testing.T, root string) (string, uint64) {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprintf("ocigate-unit-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_")))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	t.Cleanup(func() {
		// The last process may still be leaving the cgroup.
		var err error
		for i := 0; i < 100; i++ {
			if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("remove cgroup %s: %v", dir, err)
	})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, fi.Sys().(*syscall.Stat_t).Ino
}

// connectFrom runs busybox nc to 127.0.0.2:4444, inside cgroup dir when
// given, and returns its pid and output.
func connectFrom(t *testing.T, dir string) (int, string) {
	t.Helper()
	script := "exec busybox nc -w1 127.0.0.2 4444"
	if dir != "" {
		script = "echo $$ > " + filepath.Join(dir, "cgroup.procs") + " && " + script
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("nc to 127.0.0.2:4444 succeeded: %s", out)
	}
	return cmd.Process.Pid, string(out)
}

// nextEvent returns the next event for point after *seen, waiting for it.
func nextEvent(t *testing.T, seen *int, point profiles.Point) *RawEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		evs := shared.log.since(*seen)
		for i, ev := range evs {
			if ev.Point == point {
				*seen += i + 1
				return ev
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s event within 5s", point)
	return nil
}

func TestLoadEnforcesOnRegisteredCgroupOnly(t *testing.T) {
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Fatalf("busybox is required (make deps installs busybox-static): %v", err)
	}
	e, root := loadForTest(t)
	dir, cg := testCgroup(t, root)

	if bs := e.Backends(); len(bs) == 0 || !slices.ContainsFunc(bs, func(b PointBackend) bool { return b.Point == "connect" && b.Backend != "" }) {
		t.Fatalf("no backend for connect: %+v", bs)
	} else {
		t.Logf("backends: %+v", bs)
	}
	seen := shared.log.len()
	if err := e.SetWorkload(cg, 1, profiles.ModeEnforce, [profiles.NumPoints]uint32{}); err != nil {
		t.Fatal(err)
	}
	if ids, err := e.WorkloadCgroups(); err != nil || !slices.Contains(ids, cg) {
		t.Fatalf("WorkloadCgroups = %v, %v; want %d in it", ids, err, cg)
	}

	// Outside the workload nothing changes.
	if _, out := connectFrom(t, ""); !strings.Contains(out, "Connection refused") {
		t.Fatalf("connect outside the workload: %q, want Connection refused", out)
	}
	// Inside it the connect is refused with EPERM.
	pid, out := connectFrom(t, dir)
	if !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("connect inside the workload: %q, want EPERM", out)
	}
	ev := nextEvent(t, &seen, profiles.PointConnect)
	if ev.Daddr != netip.MustParseAddr("127.0.0.2") || ev.Dport != 4444 || !ev.Enforced || !ev.HasAddr ||
		ev.Action != profiles.ActionOverride || ev.Errno != 1 || ev.Profile != 1 || ev.WorkloadCgroupID != cg ||
		ev.CgroupID != cg || ev.Tgid != uint32(pid) || ev.Mechanism == "" || ev.Monitor || ev.Selector != 0 || ev.Group != 0 {
		t.Fatalf("connect event %+v (nc pid %d, cgroup %d)", ev, pid, cg)
	}
	// busybox was exec'd inside the workload: tracking knows its path.
	if ev.Path != "/bin/busybox" && ev.Path != "/usr/bin/busybox" {
		t.Errorf("connect event path %q, want busybox's", ev.Path)
	}
	c, err := e.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Points["connect"]; p.Denied < 1 || p.Evaluated < p.Denied {
		t.Fatalf("connect counters %+v", p)
	}

	// Monitor mode reports but lets the connect through.
	if err := e.SetWorkload(cg, 1, profiles.ModeMonitor, [profiles.NumPoints]uint32{}); err != nil {
		t.Fatal(err)
	}
	if _, out := connectFrom(t, dir); !strings.Contains(out, "Connection refused") {
		t.Fatalf("connect in monitor mode: %q, want Connection refused", out)
	}
	if ev := nextEvent(t, &seen, profiles.PointConnect); ev.Enforced || !ev.Monitor || ev.Errno != 0 || ev.Dport != 4444 {
		t.Fatalf("monitor event %+v", ev)
	}

	// Unregistered: enforcement is gone.
	if err := e.RemoveWorkload(cg); err != nil {
		t.Fatal(err)
	}
	if err := e.RemoveWorkload(cg); err != nil {
		t.Fatalf("second RemoveWorkload: %v", err)
	}
	if ids, _ := e.WorkloadCgroups(); slices.Contains(ids, cg) {
		t.Fatalf("cgroup %d still in the workloads map", cg)
	}
	if _, out := connectFrom(t, dir); !strings.Contains(out, "Connection refused") {
		t.Fatalf("connect after RemoveWorkload: %q, want Connection refused", out)
	}
	denied := c.Points["connect"].Denied
	if c, err = e.Counters(); err != nil || c.Points["connect"].Denied != denied {
		t.Fatalf("denied counter moved without a workload: %d -> %+v (%v)", denied, c.Points["connect"], err)
	}
}

// On this kernel every point has a backend except listen, which only the
// LSM and fmod_ret backends can hook; close is always the cgroup hook.
func TestBackendsPerPoint(t *testing.T) {
	e, _ := loadForTest(t)
	got := map[string]PointBackend{}
	for _, b := range e.Backends() {
		got[b.Point] = b
	}
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		b, ok := got[pt.String()]
		if !ok {
			t.Errorf("no backend entry for %s", pt)
			continue
		}
		t.Logf("%s: %s (%s) skipped %v", pt, b.Backend, b.Mechanism, b.Skipped)
		if b.Backend == "" || b.Mechanism == "" {
			t.Errorf("%s: backend %q mechanism %q", pt, b.Backend, b.Mechanism)
		}
	}
	if b := got["close"]; b.Backend != BackendFallback || b.Mechanism != "cgroup/sock_release" {
		t.Errorf("close: %+v", b)
	}
	if b := got["listen"]; b.Backend != BackendNone && b.Backend != BackendLSM && b.Backend != BackendFmodRet {
		t.Errorf("listen: %+v", b)
	}
}

func TestEventReaderCloseUnblocksRead(t *testing.T) {
	e := mapsOnlyEnforcer(t)
	rd, err := e.NewEventReader()
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := rd.Read()
		errc <- err
	}()
	time.AfterFunc(50*time.Millisecond, func() { rd.Close() })
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
}

func TestLoadProfileValidatesAndReplaces(t *testing.T) {
	e, _ := loadForTest(t)
	bad := profiles.Default()
	bad.Mode = "sometimes"
	if err := e.LoadProfile(2, bad); err == nil {
		t.Fatal("invalid profile loaded")
	}
	// Reloading replaces point by point; a point without selectors is cleared.
	p := profiles.Default()
	p.Points[profiles.PointConnect] = nil
	if err := e.LoadProfile(1, p); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if err := e.LoadProfile(1, p); err != nil {
		t.Fatalf("reload of a cleared point: %v", err)
	}
	if _, ok := e.rulesOf(1, uint32(profiles.PointConnect)); ok {
		t.Fatal("connect rules left after the point was cleared")
	}
}

func TestLoadRefusesBadRoot(t *testing.T) {
	if _, err := Load(Options{}); err == nil || !strings.Contains(err.Error(), "no cgroup v2 root") {
		t.Fatalf("empty root: %v", err)
	}
	if _, err := Load(Options{CgroupRoot: filepath.Join(t.TempDir(), "none")}); err == nil {
		t.Fatal("missing root accepted")
	}
	if _, err := Load(Options{CgroupRoot: t.TempDir(), Enforcer: "magic"}); err == nil || !strings.Contains(err.Error(), `enforcer "magic"`) {
		t.Fatalf("unknown enforcer: %v", err)
	}
}

// ---- Kernel tests of the rule engine ----
//
// Each runs children in a fresh cgroup registered as a workload and
// checks both what the child's syscall got and what the kernel reported.

// kernel is the loaded enforcer with one registered test cgroup and a
// profile id of its own.
type kernel struct {
	t    *testing.T
	e    *Enforcer
	id   uint32 // profile
	dir  string // the cgroup
	cg   uint64
	cgFD int
	log  eventView
}

var nextProfileID atomic.Uint32

func newKernel(t *testing.T) *kernel {
	t.Helper()
	e, root := loadForTest(t)
	dir, cg := testCgroup(t, root)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	k := &kernel{t: t, e: e, id: 100 + nextProfileID.Add(1), dir: dir, cg: cg, cgFD: fd,
		log: eventView{l: shared.log, from: shared.log.len(), cg: cg}}
	t.Cleanup(func() {
		unix.Close(fd)
		if err := e.RemoveWorkload(cg); err != nil {
			t.Error(err)
		}
		if err := e.UnloadProfile(k.id); err != nil {
			t.Error(err)
		}
	})
	return k
}

// use loads p as the kernel's profile and points the cgroup at it.
func (k *kernel) use(p *profiles.Profile, disabled [profiles.NumPoints]uint32) {
	k.t.Helper()
	if err := k.e.LoadProfile(k.id, p); err != nil {
		k.t.Fatalf("LoadProfile: %v", err)
	}
	if err := k.e.SetWorkload(k.cg, k.id, p.Mode, disabled); err != nil {
		k.t.Fatal(err)
	}
}

// command builds a command that starts inside the cgroup (clone3 with
// CLONE_INTO_CGROUP): its exec is tracked.
func (k *kernel) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: k.cgFD}
	return cmd
}

// helperPath is the test binary: the helper runs as it.
func helperPath(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return self
}

// helper runs the test binary as a helper inside the cgroup; it returns
// the helper's pid and the errno of the operation (0: it succeeded).
func (k *kernel) helper(op, network, addr string) (int, syscall.Errno) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := k.command(ctx, helperPath(k.t))
	cmd.Env = append(os.Environ(), helperEnv+"="+op+" "+network+" "+addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		k.t.Fatalf("helper %s %s %s: %v: %s", op, network, addr, err, out)
	}
	return cmd.Process.Pid, parseHelper(k.t, string(out))
}

func parseHelper(t *testing.T, out string) syscall.Errno {
	t.Helper()
	out = strings.TrimSpace(out)
	if out == "ok" {
		return 0
	}
	if n, ok := strings.CutPrefix(out, "errno="); ok {
		v, err := strconv.Atoi(n)
		if err == nil {
			return syscall.Errno(v)
		}
	}
	t.Fatalf("helper printed %q", out)
	return 0
}

// busybox runs `BUSYBOX nc -w1 HOST PORT` inside the cgroup with the
// given path of busybox; it returns the pid and the errno nc reported.
func (k *kernel) busybox(path, host string, port int) (int, syscall.Errno) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := k.command(ctx, path, "nc", "-w1", host, strconv.Itoa(port))
	out, err := cmd.CombinedOutput()
	s := string(out)
	switch {
	case err == nil:
		return cmd.Process.Pid, 0
	case strings.Contains(s, "Operation not permitted"):
		return cmd.Process.Pid, unix.EPERM
	case strings.Contains(s, "Connection refused"):
		return cmd.Process.Pid, unix.ECONNREFUSED
	}
	k.t.Fatalf("%s nc %s %d: %v: %q", path, host, port, err, s)
	return 0, 0
}

// eventLog collects everything the kernel reports.
type eventLog struct {
	mu   sync.Mutex
	evs  []*RawEvent
	rd   *EventReader
	done chan struct{}
}

func startEventLog(e *Enforcer) (*eventLog, error) {
	rd, err := e.NewEventReader()
	if err != nil {
		return nil, err
	}
	l := &eventLog{rd: rd, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			ev, err := rd.Read()
			if errors.Is(err, ErrClosed) {
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "event log: %v\n", err)
				continue
			}
			l.mu.Lock()
			l.evs = append(l.evs, ev)
			l.mu.Unlock()
		}
	}()
	return l, nil
}

func (l *eventLog) stop() {
	l.rd.Close()
	<-l.done
}

func (l *eventLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.evs)
}

// since returns the events after the first n.
func (l *eventLog) since(n int) []*RawEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs[n:])
}

// eventView is one test's part of the log: its cgroup's events from
// its start on.
type eventView struct {
	l    *eventLog
	from int
	cg   uint64
}

func (v eventView) matching(match func(*RawEvent) bool) []*RawEvent {
	var out []*RawEvent
	for _, ev := range v.l.since(v.from) {
		if ev.WorkloadCgroupID == v.cg && match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// wait returns the events match accepts once there are n of them, and
// after a short settling time checks that no more come.
func (v eventView) wait(t *testing.T, n int, match func(*RawEvent) bool) []*RawEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(v.matching(match)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events within 5s; this test's events: %s", len(v.matching(match)), n,
				dumpEvents(v.matching(func(*RawEvent) bool { return true })))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	got := v.matching(match)
	if len(got) != n {
		t.Fatalf("%d events, want %d: %s", len(got), n, dumpEvents(got))
	}
	return got
}

func dumpEvents(evs []*RawEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s pid %d sel %d group %d action %v enforced %v monitor %v daddr %v:%d saddr %v:%d path %q",
			ev.Point, ev.Tgid, ev.Selector, ev.Group, ev.Action, ev.Enforced, ev.Monitor, ev.Daddr, ev.Dport, ev.Saddr, ev.Sport, ev.Path)
	}
	return b.String()
}

// of matches the events of one process at one point.
func of(pid int, point profiles.Point) func(*RawEvent) bool {
	return func(ev *RawEvent) bool { return ev.Tgid == uint32(pid) && ev.Point == point }
}

func prefixes(s ...string) profiles.AddrMatch {
	var m profiles.AddrMatch
	for _, p := range s {
		m.Prefixes = append(m.Prefixes, netip.MustParsePrefix(p))
	}
	return m
}

func connectProfile(sels ...profiles.Selector) *profiles.Profile {
	p := &profiles.Profile{Name: "test", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointConnect] = sels
	return p
}

// wantErrno fails unless got is want.
func wantErrno(t *testing.T, what string, got, want syscall.Errno) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: errno %d (%v), want %d (%v)", what, int(got), got, int(want), want)
	}
}

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

// busyboxPaths are the paths busybox is exec'd by in the binary tests.
func busyboxPaths(t *testing.T) (bin, usrBin string) {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s: %v", p, err)
		}
	}
	return "/bin/busybox", "/usr/bin/busybox"
}

// (d) matchBinaries: exec tracking and the In, Prefix and Postfix sets.
func TestKernelBinaries(t *testing.T) {
	bin, usrBin := busyboxPaths(t)
	k := newKernel(t)
	self := helperPath(t)
	if strings.HasPrefix(self, "/usr/") || strings.HasSuffix(self, "box") || self == bin {
		t.Skipf("test binary at %s looks like busybox to the selectors", self)
	}
	type try struct {
		path string // busybox path, or "" for the helper
		want syscall.Errno
	}
	tests := []struct {
		name  string
		match profiles.BinaryMatch
		tries []try
	}{
		{"In", profiles.BinaryMatch{Operator: "In", Values: []string{bin}},
			[]try{{bin, unix.EPERM}, {usrBin, unix.ECONNREFUSED}, {"", unix.ECONNREFUSED}}},
		{"NotIn", profiles.BinaryMatch{Operator: "NotIn", Values: []string{bin, "/nonexistent"}},
			[]try{{bin, unix.ECONNREFUSED}, {usrBin, unix.EPERM}, {"", unix.EPERM}}},
		{"Prefix", profiles.BinaryMatch{Operator: "Prefix", Values: []string{"/usr/"}},
			[]try{{usrBin, unix.EPERM}, {bin, unix.ECONNREFUSED}, {"", unix.ECONNREFUSED}}},
		{"NotPrefix", profiles.BinaryMatch{Operator: "NotPrefix", Values: []string{"/usr/"}},
			[]try{{usrBin, unix.ECONNREFUSED}, {bin, unix.EPERM}, {"", unix.EPERM}}},
		{"Postfix", profiles.BinaryMatch{Operator: "Postfix", Values: []string{"box"}},
			[]try{{bin, unix.EPERM}, {usrBin, unix.EPERM}, {"", unix.ECONNREFUSED}}},
		{"NotPostfix", profiles.BinaryMatch{Operator: "NotPostfix", Values: []string{"box"}},
			[]try{{bin, unix.ECONNREFUSED}, {"", unix.EPERM}}},
		{"Postfix of the full path", profiles.BinaryMatch{Operator: "Postfix", Values: []string{usrBin}},
			[]try{{usrBin, unix.EPERM}, {bin, unix.ECONNREFUSED}}},
	}
	for _, tt := range tests {
		k.use(connectProfile(profiles.Selector{Policy: tt.name, Daddr: prefixes("127.0.0.2/32"),
			Binaries: []profiles.BinaryMatch{tt.match}, Action: profiles.ActionOverride}), [profiles.NumPoints]uint32{})
		for _, tr := range tt.tries {
			var (
				pid   int
				errno syscall.Errno
				path  = tr.path
			)
			if path == "" {
				pid, errno = k.helper("connect", "tcp4", "127.0.0.2:4444")
				path = self
			} else {
				pid, errno = k.busybox(path, "127.0.0.2", 4444)
			}
			wantErrno(t, tt.name+": "+path, errno, tr.want)
			if tr.want != unix.EPERM {
				k.log.wait(t, 0, of(pid, profiles.PointConnect))
				continue
			}
			ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]
			want := path // as far as the event's field holds it
			if len(want) > PathLen-1 {
				want = want[:PathLen-1]
			}
			if ev.Path != want || !ev.Enforced {
				t.Fatalf("%s: event path %q, want %q: %+v", tt.name, ev.Path, path, ev)
			}
		}
	}
}

// PathLen is the size of the event's path field.
const PathLen = len(fallbackEvent{}.Path)

// A process whose exec was not seen (it joined the workload later) has
// no known binary: neither In nor NotIn matches it.
func TestKernelBinariesUnknownProcess(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is needed for /dev/tcp")
	}
	k := newKernel(t)
	for _, op := range []string{"In", "NotIn"} {
		k.use(connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.2/32"),
			Binaries: []profiles.BinaryMatch{{Operator: op, Values: []string{"/usr/bin/bash", "/bin/bash"}}},
			Action:   profiles.ActionOverride}), [profiles.NumPoints]uint32{})
		script := "echo $$ > " + filepath.Join(k.dir, "cgroup.procs") + " && exec 3<>/dev/tcp/127.0.0.2/4444"
		cmd := exec.Command("bash", "-c", script)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Connection refused") {
			t.Fatalf("%s: bash outside tracking: %v %q, want Connection refused", op, err, out)
		}
		if _, ok := k.e.procOf(uint32(cmd.Process.Pid)); ok {
			t.Fatalf("procs has an entry for a process exec'd outside the workload")
		}
		k.log.wait(t, 0, of(cmd.Process.Pid, profiles.PointConnect))
	}
}

// (d) Exec tracking: the exec'd path and its hash; a fork inherits its
// parent's entry; exit removes it.
func TestKernelExecForkTracking(t *testing.T) {
	bin, _ := busyboxPaths(t)
	k := newKernel(t)
	k.use(connectProfile(profiles.Selector{Action: profiles.ActionPost}), [profiles.NumPoints]uint32{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The subshell forks and runs the read builtin: no exec.
	cmd := k.command(ctx, bin, "sh", "-c", "exec 3<&0; (read x <&3) & echo $!; wait")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read child pid: %v", err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("child pid %q", line)
	}
	parent := cmd.Process.Pid
	for _, pid := range []int{parent, child} {
		p, ok := k.e.procOf(uint32(pid))
		if !ok {
			t.Fatalf("no procs entry for pid %d (parent %d)", pid, parent)
		}
		if procPath(p) != bin || p.Hash != PathHash(bin) || p.Len != uint32(len(bin)) {
			t.Fatalf("procs[%d] = %q hash %#x len %d, want %q hash %#x len %d", pid, procPath(p), p.Hash, p.Len, bin, PathHash(bin), len(bin))
		}
	}
	stdin.Close()
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sh: %v", err)
	}
	for _, pid := range []int{parent, child} {
		if _, ok := k.e.procOf(uint32(pid)); ok {
			t.Errorf("procs entry of pid %d left after exit", pid)
		}
	}
	// The helper's own exec is tracked under its path.
	self := helperPath(t)
	pid, _ := k.helper("connect", "tcp4", "127.0.0.3:4444")
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; !strings.HasPrefix(self, ev.Path) || ev.Path == "" {
		t.Fatalf("helper event path %q, want %q", ev.Path, self)
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

// (i) Replacing a live profile: the new sets apply, the old ones are
// gone, and unloading leaves what was there before.
func TestKernelReplaceProfile(t *testing.T) {
	k := newKernel(t)
	base := k.e.setCounts(t)
	v1 := connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.1/32", "127.0.0.9/32", "10.0.0.0/8"),
		Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 4005, Hi: 4005}}}, Action: profiles.ActionOverride,
		Binaries: []profiles.BinaryMatch{{Operator: "NotIn", Values: []string{"/nonexistent"}}}})
	k.use(v1, [profiles.NumPoints]uint32{})
	first := k.e.setCounts(t)
	if first != (setCounts{Addrs: base.Addrs + 3, Names: base.Names, Bins: base.Bins + 1, Paths: base.Paths, Ports: base.Ports + 1}) {
		t.Fatalf("v1 sets %+v (base %+v)", first, base)
	}
	_, errno := k.helper("connect", "tcp4", "127.0.0.1:4005")
	wantErrno(t, "v1: 4005", errno, unix.EPERM)

	v2 := connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.1/32"),
		Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 4006, Hi: 4006}}}, Action: profiles.ActionOverride})
	if err := k.e.LoadProfile(k.id, v2); err != nil {
		t.Fatal(err)
	}
	if c := k.e.setCounts(t); c != (setCounts{Addrs: base.Addrs + 1, Names: base.Names, Bins: base.Bins, Paths: base.Paths, Ports: base.Ports + 1}) {
		t.Fatalf("v2 sets %+v (base %+v)", c, base)
	}
	_, errno = k.helper("connect", "tcp4", "127.0.0.1:4005")
	wantErrno(t, "v2: 4005", errno, unix.ECONNREFUSED)
	_, errno = k.helper("connect", "tcp4", "127.0.0.1:4006")
	wantErrno(t, "v2: 4006", errno, unix.EPERM)

	if err := k.e.RemoveWorkload(k.cg); err != nil {
		t.Fatal(err)
	}
	if err := k.e.UnloadProfile(k.id); err != nil {
		t.Fatal(err)
	}
	if c := k.e.setCounts(t); c != base {
		t.Fatalf("after unload %+v, want %+v", c, base)
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
	all := func(pid int) func(*RawEvent) bool {
		return func(ev *RawEvent) bool { return ev.Tgid == uint32(pid) && ev.Point == profiles.PointConnect }
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

// Exec: the fallback kills the new image before it runs; matchBinaries
// sees the path being exec'd.
func TestKernelExecSigkill(t *testing.T) {
	bin, usrBin := busyboxPaths(t)
	k := newKernel(t)
	p := &profiles.Profile{Name: "exec", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointExec] = []profiles.Selector{{Policy: "no-usr-busybox", Call: "security_bprm_check",
		Binaries: []profiles.BinaryMatch{{Operator: "In", Values: []string{usrBin}}}, Action: profiles.ActionSigkill}}
	k.use(p, [profiles.NumPoints]uint32{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := k.command(ctx, usrBin, "true")
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("%s true: %v, want killed by SIGKILL", usrBin, err)
	}
	ev := k.log.wait(t, 1, of(cmd.Process.Pid, profiles.PointExec))[0]
	if !ev.Killed || !ev.Enforced || ev.Action != profiles.ActionSigkill || ev.Path != usrBin || ev.Binary != "busybox" ||
		ev.Mechanism != "tracepoint_sigkill" {
		t.Fatalf("exec event %+v", ev)
	}
	// Another path to the same file runs.
	cmd = k.command(ctx, bin, "true")
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s true: %v", bin, err)
	}
	k.log.wait(t, 0, of(cmd.Process.Pid, profiles.PointExec))
}

// Close detaches every program: nothing is enforced afterwards.
func TestCloseDetaches(t *testing.T) {
	_, root := loadForTest(t) // mounts, root, and a warm verifier
	e, err := Load(Options{CgroupRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			e.Close()
		}
	})
	dir, cg := testCgroup(t, root)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	k := &kernel{t: t, e: e, id: 1, dir: dir, cg: cg, cgFD: fd}
	k.use(connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.2/32"), Action: profiles.ActionOverride}), [profiles.NumPoints]uint32{})
	_, errno := k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(t, "before Close", errno, unix.EPERM)
	closed = true
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, errno = k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(t, "after Close", errno, unix.ECONNREFUSED)
}
