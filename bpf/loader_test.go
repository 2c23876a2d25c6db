package bpf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/hostfs"
	"github.com/ocigate/ocigate/profiles"
)

// loadForTest loads the enforcer at the host's cgroup v2 root with the
// default profile as id 1.
func loadForTest(t *testing.T) (*Enforcer, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
	for _, m := range hostfs.Needed {
		if _, err := hostfs.Ensure(m); err != nil && !m.Optional {
			t.Fatalf("mount %s: %v", m.Path, err)
		}
	}
	root, err := cgroupfilter.V2Mount()
	if err != nil {
		t.Fatalf("cgroup v2: %v", err)
	}
	e, err := Load(Options{CgroupRoot: root})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := e.LoadProfile(1, profiles.Default()); err != nil {
		t.Fatalf("LoadProfile: %v", err)
	}
	return e, root
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
		for i := 0; i < 50; i++ {
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

// nextEvent reads events until one for point arrives or the deadline.
func nextEvent(t *testing.T, rd *EventReader, point profiles.Point) *RawEvent {
	t.Helper()
	type result struct {
		ev  *RawEvent
		err error
	}
	ch := make(chan result, 1)
	go func() {
		for {
			ev, err := rd.Read()
			if err != nil || ev.Point == point {
				ch <- result{ev, err}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read event: %v", r.err)
		}
		return r.ev
	case <-time.After(5 * time.Second):
		rd.Close() // unblocks the reader goroutine
		<-ch
		t.Fatalf("no %s event within 5s", point)
		return nil
	}
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
	rd, err := e.NewEventReader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if err := e.SetWorkload(cg, 1, profiles.ModeEnforce); err != nil {
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
	ev := nextEvent(t, rd, profiles.PointConnect)
	if ev.Daddr != netip.MustParseAddr("127.0.0.2") || ev.Dport != 4444 || !ev.Enforced || !ev.HasAddr ||
		ev.Action != profiles.ActionOverride || ev.Errno != 1 || ev.Profile != 1 || ev.WorkloadCgroupID != cg ||
		ev.CgroupID != cg || ev.Tgid != uint32(pid) || ev.Mechanism == "" {
		t.Fatalf("connect event %+v (nc pid %d, cgroup %d)", ev, pid, cg)
	}
	c, err := e.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Points["connect"]; p.Denied < 1 || p.Evaluated < p.Denied {
		t.Fatalf("connect counters %+v", p)
	}

	// Monitor mode reports but lets the connect through.
	if err := e.SetWorkload(cg, 1, profiles.ModeMonitor); err != nil {
		t.Fatal(err)
	}
	if _, out := connectFrom(t, dir); !strings.Contains(out, "Connection refused") {
		t.Fatalf("connect in monitor mode: %q, want Connection refused", out)
	}
	if ev := nextEvent(t, rd, profiles.PointConnect); ev.Enforced || ev.Dport != 4444 {
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

func TestEventReaderCloseUnblocksRead(t *testing.T) {
	e, _ := loadForTest(t)
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
}

func TestLoadRefusesBadRoot(t *testing.T) {
	if _, err := Load(Options{}); err == nil || !strings.Contains(err.Error(), "no cgroup v2 root") {
		t.Fatalf("empty root: %v", err)
	}
	if _, err := Load(Options{CgroupRoot: filepath.Join(t.TempDir(), "none")}); err == nil {
		t.Fatal("missing root accepted")
	}
}
