package enforcer

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/profiles"
)

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

func TestLoadEnforcesOnRegisteredCgroupOnly(t *testing.T) {
	testenv.NeedTools(t, "busybox")
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
	if b := got["close"]; b.Backend != bpf.BackendFallback || b.Mechanism != "cgroup/sock_release" {
		t.Errorf("close: %+v", b)
	}
	if b := got["listen"]; b.Backend != BackendNone && b.Backend != bpf.BackendLSM && b.Backend != bpf.BackendFmodRet {
		t.Errorf("listen: %+v", b)
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
	eventuallyErrno(t, "after Close", unix.ECONNREFUSED, func() syscall.Errno {
		_, errno := k.helper("connect", "tcp4", "127.0.0.2:4444")
		return errno
	})
}

// A point no backend can carry is left unavailable with the reason; Load
// goes on with the others and fails only when nothing can enforce.
func TestUnavailablePointDegrades(t *testing.T) {
	fb, err := bpf.LoadFallback()
	if err != nil {
		t.Fatal(err)
	}
	env := &attachEnv{specs: map[string]*ebpf.CollectionSpec{bpf.BackendFallback: fb}, named: map[string]namedProgram{}}
	plan := pointPlan{point: "connect", candidates: []candidate{
		{bpf.BackendLSM, nil},
		{bpf.BackendFallback, []program{{name: "no_such_program", mechanism: "cgroup/nothing"}}},
	}}
	e := &Enforcer{log: zap.NewNop()}
	pb := e.attachPoint(env, plan, env.verifyFrom(plan, 0, BackendAuto), BackendAuto)
	if pb.Backend != BackendNone || !strings.Contains(pb.Error, "no_such_program is not in the object") ||
		!strings.Contains(pb.Error, "lsm: no hook for this point") {
		t.Fatalf("unavailable point: %+v", pb)
	}
	e.backends = []PointBackend{pb, {Point: PointTracking, Backend: bpf.BackendTracepoint}, {Point: "close", Backend: bpf.BackendFallback}}
	if err := e.enforcesSomething(); !errors.Is(err, ErrNothingEnforces) || !strings.Contains(err.Error(), "connect: no backend could attach") {
		t.Fatalf("nothing enforces, yet: %v", err)
	}
	if got := e.Unavailable(); len(got) != 1 || got["connect"] != pb.Error {
		t.Fatalf("Unavailable() = %v", got)
	}
	e.backends = append(e.backends, PointBackend{Point: "dup", Backend: bpf.BackendTracepoint})
	if err := e.enforcesSomething(); err != nil {
		t.Fatalf("dup enforces: %v", err)
	}
}
