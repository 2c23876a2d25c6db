package enforcer

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/profiles"
)

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

// eventuallyErrno retries probe until it gives want: for states the
// kernel reaches after the call that causes them returns (a link whose
// last reference went is released from a work queue), up to 10 s.
func eventuallyErrno(t *testing.T, what string, want syscall.Errno, probe func() syscall.Errno) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := probe()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: errno %d (%v) for 10 s, want %d (%v)", what, int(got), got, int(want), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
