package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// events writes the cgroup.events of a fake cgroup.
func (h *fakeHost) events(path string, populated bool) {
	h.t.Helper()
	v := "0"
	if populated {
		v = "1"
	}
	if err := os.WriteFile(filepath.Join(h.cg, path, "cgroup.events"), []byte("populated "+v+"\nfrozen 0\n"), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func TestReconcileDropsRemovedCgroup(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	gone := h.registration("gone", 100, "/pods/gone")
	live := h.registration("live", 101, "/pods/live")
	if _, err := a.Register(gone); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register(live); err != nil {
		t.Fatal(err)
	}
	h.events("/pods/live", true)
	enf.takeOps()

	if got := a.Reconcile(); len(got) != 0 {
		t.Fatalf("nothing is gone yet, dropped %v", got)
	}
	wantOps(t, enf)
	if err := os.RemoveAll(filepath.Join(h.cg, "pods", "gone")); err != nil {
		t.Fatal(err)
	}
	if got := a.Reconcile(); !reflect.DeepEqual(got, []string{"gone"}) {
		t.Fatalf("dropped %v, want [gone]", got)
	}
	// The map entry goes exactly as Unregister removes it.
	wantOps(t, enf, fmt.Sprintf("remove %d", gone.Identity.CgroupID))
	if _, ok := a.Registry().Get("gone"); ok {
		t.Error("gone is still registered")
	}
	if _, ok := a.Registry().Get("live"); !ok {
		t.Error("live was dropped")
	}
	if n := a.Stats().Reconciled.Load(); n != 1 {
		t.Errorf("reconciled counter %d", n)
	}
	if n := a.Stats().Unregistrations.Load(); n != 0 {
		t.Errorf("a dropped workload counted as unregistered: %d", n)
	}
	if c := a.Status().Counters["workloads_reconciled"]; c != 1 {
		t.Errorf("status counter workloads_reconciled = %d", c)
	}
	if got := a.Reconcile(); len(got) != 0 {
		t.Errorf("second pass dropped %v", got)
	}
}

func TestReconcileReplacedCgroup(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	// The directory is removed and made again: same path, another cgroup.
	if err := os.Remove(filepath.Join(h.cg, "pods", "c1")); err != nil {
		t.Fatal(err)
	}
	h.cgroup("/pods/other") // keeps the old inode number from coming back
	if id := h.cgroup("/pods/c1"); id == r.Identity.CgroupID {
		t.Skip("the file system reused the inode number")
	}
	if got := a.Reconcile(); !reflect.DeepEqual(got, []string{"c1"}) {
		t.Fatalf("dropped %v, want [c1]", got)
	}
}

func TestReconcileEmptyCgroupTwice(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	h.events("/pods/c1", false)
	if got := a.Reconcile(); len(got) != 0 {
		t.Fatalf("dropped %v after one empty check", got)
	}
	// A process came back in between: the count starts again.
	h.events("/pods/c1", true)
	if got := a.Reconcile(); len(got) != 0 {
		t.Fatalf("dropped %v while populated", got)
	}
	h.events("/pods/c1", false)
	if got := a.Reconcile(); len(got) != 0 {
		t.Fatalf("dropped %v after one empty check", got)
	}
	enf.takeOps()
	if got := a.Reconcile(); !reflect.DeepEqual(got, []string{"c1"}) {
		t.Fatalf("dropped %v after two empty checks, want [c1]", got)
	}
	wantOps(t, enf, fmt.Sprintf("remove %d", r.Identity.CgroupID))
}

// A workload registered anew (same container ID, new cgroup) after the
// check saw the old one gone is not dropped.
func TestReconcileKeepsReRegistered(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	old, _ := a.Registry().Get("c1")
	if err := os.Remove(filepath.Join(h.cg, "pods", "c1")); err != nil {
		t.Fatal(err)
	}
	r2 := h.registration("c1", 101, "/pods/c1-restarted")
	if _, err := a.Register(r2); err != nil {
		t.Fatal(err)
	}
	if a.dropIfGone(old, false) {
		t.Fatal("the new registration was dropped for the old cgroup")
	}
	if w, ok := a.Registry().Get("c1"); !ok || w.CgroupID != r2.Identity.CgroupID {
		t.Fatalf("registry entry %+v, %v", w, ok)
	}
}

func TestReconcileMapFailureKeepsEntry(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	if _, err := a.Register(h.registration("c1", 100, "/pods/c1")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(h.cg, "pods", "c1")); err != nil {
		t.Fatal(err)
	}
	enf.failRem = fmt.Errorf("map busy")
	if got := a.Reconcile(); len(got) != 0 {
		t.Fatalf("dropped %v although the map entry stayed", got)
	}
	if _, ok := a.Registry().Get("c1"); !ok {
		t.Fatal("registry entry gone while its map entry stayed")
	}
	enf.failRem = nil
	if got := a.Reconcile(); !reflect.DeepEqual(got, []string{"c1"}) {
		t.Fatalf("retry dropped %v", got)
	}
}

func TestRunReconcile(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	if _, err := a.Register(h.registration("c1", 100, "/pods/c1")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.RunReconcile(ctx, 10*time.Millisecond)
	}()
	if err := os.Remove(filepath.Join(h.cg, "pods", "c1")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Registry().Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the periodic check did not drop the workload")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
