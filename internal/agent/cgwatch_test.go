package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/api"
)

// watchedAgent runs RunCgroupWatch on a until the test ends and waits
// until it watches n cgroups.
func watchedAgent(t *testing.T, a *Agent, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.RunCgroupWatch(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("RunCgroupWatch did not return after cancel")
		}
	})
	waitFor(t, fmt.Sprintf("%d cgroups watched", n), func() bool { return watches(a) == n })
}

// watches is the number of cgroups a watches (-1: not running).
func watches(a *Agent) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cgw == nil {
		return -1
	}
	return a.cgw.len()
}

// writeEmptied writes populated 0 over a fake cgroup's cgroup.events in one
// write, as the kernel changes it: h.events truncates first, and a check
// between the two writes would read no populated key.
func writeEmptied(t *testing.T, h *fakeHost, path string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(h.cg, path, "cgroup.events"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("populated 0\nfrozen 0\n"), 0); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A workload whose cgroup empties and is then removed (a container that
// stopped, without poststop) is dropped at once, as Unregister drops it,
// with no periodic check; its watch goes with it.
func TestCgroupWatchDropsRemovedCgroup(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	r := h.registration("stopped", 100, "/pods/stopped")
	live := h.registration("live", 101, "/pods/live")
	h.events("/pods/stopped", true)
	h.events("/pods/live", true)
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	watchedAgent(t, a, 1) // registered before the watch started
	if _, err := a.Register(live); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the later registration watched", func() bool { return watches(a) == 2 })
	enf.takeOps()

	writeEmptied(t, h, "/pods/stopped")
	if err := os.RemoveAll(filepath.Join(h.cg, "pods", "stopped")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stopped dropped", func() bool { _, ok := a.Registry().Get("stopped"); return !ok })
	wantOps(t, enf, fmt.Sprintf("remove %d", r.Identity.CgroupID))
	if _, ok := a.Registry().Get("live"); !ok {
		t.Error("live was dropped")
	}
	if n := watches(a); n != 1 {
		t.Errorf("%d cgroups watched after the drop, want 1 (live)", n)
	}
	if n := a.Stats().Reconciled.Load(); n != 1 {
		t.Errorf("reconciled counter %d, want 1", n)
	}
	if err := a.Unregister("live"); err != nil {
		t.Fatal(err)
	}
	if n := watches(a); n != 0 {
		t.Errorf("%d cgroups watched after Unregister, want 0", n)
	}
}

// A cgroup that empties and stays is not the watch's to drop: a merely
// empty cgroup is the periodic check's (two checks in a row).
func TestCgroupWatchKeepsEmptyCgroup(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	r := h.registration("idle", 100, "/pods/idle")
	h.events("/pods/idle", true)
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	watchedAgent(t, a, 1)
	writeEmptied(t, h, "/pods/idle")
	time.Sleep(100 * time.Millisecond) // past any event
	if _, ok := a.Registry().Get("idle"); !ok {
		t.Fatal("a workload whose cgroup is only empty was dropped by the watch")
	}
	if n := watches(a); n != 1 {
		t.Errorf("%d cgroups watched, want 1", n)
	}
}

// Sibling cgroups share their parent directory's one watch; when the
// parent itself goes (a pod's cgroup, removed with its containers'),
// every workload in it is dropped and nothing stays watched.
func TestCgroupWatchParentRemoved(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	one := h.registration("one", 100, "/pods/pod-a/one")
	two := h.registration("two", 101, "/pods/pod-a/two")
	h.events("/pods/pod-a/one", true)
	h.events("/pods/pod-a/two", true)
	watchedAgent(t, a, 0)
	for _, r := range []*api.Registration{one, two} {
		if _, err := a.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both watched", func() bool { return watches(a) == 2 })
	a.mu.Lock()
	dirs := len(a.cgw.dirs)
	a.mu.Unlock()
	if dirs != 1 {
		t.Errorf("%d directories watched for two sibling cgroups, want 1", dirs)
	}
	if err := os.RemoveAll(filepath.Join(h.cg, "pods", "pod-a")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both dropped", func() bool {
		_, ok1 := a.Registry().Get("one")
		_, ok2 := a.Registry().Get("two")
		return !ok1 && !ok2
	})
	if n := watches(a); n != 0 {
		t.Errorf("%d cgroups watched after the drop, want 0", n)
	}
}
