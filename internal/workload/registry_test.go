package workload

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ocigate/ocigate/cgroupfilter"
)

func wl(id string, cg uint64) *Workload {
	return &Workload{ContainerID: id, Identity: cgroupfilter.Identity{CgroupID: cg, CgroupPath: fmt.Sprintf("/cg/%d", cg)}, Profile: "default"}
}

func ids(ws []*Workload) string {
	var s []string
	for _, w := range ws {
		s = append(s, fmt.Sprintf("%s@%d", w.ContainerID, w.CgroupID))
	}
	return strings.Join(s, ",")
}

func TestRegistryPutGetRemove(t *testing.T) {
	r := NewRegistry()
	if r.Len() != 0 || len(r.List()) != 0 {
		t.Fatal("new registry not empty")
	}
	a, b := wl("b-ctr", 20), wl("a-ctr", 10)
	for _, w := range []*Workload{a, b} {
		old, err := r.Put(w)
		if err != nil || old != nil {
			t.Fatalf("Put(%s) = %v, %v", w.ContainerID, old, err)
		}
	}
	if r.Len() != 2 {
		t.Fatalf("Len = %d, want 2", r.Len())
	}
	if got, ok := r.Get("b-ctr"); !ok || got != a {
		t.Fatalf("Get(b-ctr) = %v, %v", got, ok)
	}
	if got, ok := r.ByCgroup(10); !ok || got != b {
		t.Fatalf("ByCgroup(10) = %v, %v", got, ok)
	}
	if _, ok := r.Get("nope"); ok {
		t.Fatal("Get of an unknown id succeeded")
	}
	if _, ok := r.ByCgroup(99); ok {
		t.Fatal("ByCgroup of an unknown cgroup succeeded")
	}
	if got := ids(r.List()); got != "a-ctr@10,b-ctr@20" {
		t.Fatalf("List = %s, want sorted by container id", got)
	}

	w, ok := r.Remove("a-ctr")
	if !ok || w != b {
		t.Fatalf("Remove(a-ctr) = %v, %v", w, ok)
	}
	if _, ok := r.ByCgroup(10); ok {
		t.Fatal("cgroup index kept a removed workload")
	}
	if _, ok := r.Remove("a-ctr"); ok {
		t.Fatal("second Remove succeeded")
	}
	if r.Len() != 1 || ids(r.List()) != "b-ctr@20" {
		t.Fatalf("after Remove: Len %d, List %s", r.Len(), ids(r.List()))
	}
	// The freed cgroup can be taken by another container.
	if _, err := r.Put(wl("c-ctr", 10)); err != nil {
		t.Fatalf("Put on a freed cgroup: %v", err)
	}
}

func TestRegistryReplaceMovesCgroupIndex(t *testing.T) {
	r := NewRegistry()
	first := wl("c1", 10)
	if _, err := r.Put(first); err != nil {
		t.Fatal(err)
	}
	second := wl("c1", 11)
	old, err := r.Put(second)
	if err != nil || old != first {
		t.Fatalf("replacing Put = %v, %v; want the old entry", old, err)
	}
	if _, ok := r.ByCgroup(10); ok {
		t.Fatal("old cgroup still indexed after replacement")
	}
	if got, ok := r.ByCgroup(11); !ok || got != second {
		t.Fatalf("ByCgroup(11) = %v, %v", got, ok)
	}
	if r.Len() != 1 {
		t.Fatalf("Len = %d after replacement", r.Len())
	}
	// Same container, same cgroup: a replacement, not a conflict.
	third := wl("c1", 11)
	if old, err := r.Put(third); err != nil || old != second {
		t.Fatalf("re-Put on the same cgroup = %v, %v", old, err)
	}
	// The old cgroup is free again.
	if err := r.CheckPut(wl("c2", 10)); err != nil {
		t.Fatalf("old cgroup not freed: %v", err)
	}
}

func TestRegistryRefusals(t *testing.T) {
	r := NewRegistry()
	if _, err := r.Put(wl("owner", 10)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		w    *Workload
		want string
	}{
		{"cgroup of another container", wl("intruder", 10), `cgroup 10 (/cg/10) is already registered by container "owner"`},
		{"empty id", wl("", 30), "no container id"},
		{"zero cgroup", wl("c3", 0), `"c3" has no cgroup id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, err := range map[string]error{"CheckPut": r.CheckPut(tt.w), "Put": func() error { _, err := r.Put(tt.w); return err }()} {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: got %v, want %q", name, err, tt.want)
				}
			}
			if r.Len() != 1 {
				t.Fatalf("refused Put changed the registry: %s", ids(r.List()))
			}
			if got, _ := r.ByCgroup(10); got == nil || got.ContainerID != "owner" {
				t.Fatalf("owner lost its cgroup: %v", got)
			}
		})
	}
}

// A refused replacement keeps the container's existing entry.
func TestRegistryRefusedReplacementKeepsOld(t *testing.T) {
	r := NewRegistry()
	_, _ = r.Put(wl("a", 1))
	_, _ = r.Put(wl("b", 2))
	if _, err := r.Put(wl("a", 2)); err == nil {
		t.Fatal("moving a onto b's cgroup succeeded")
	}
	if got, ok := r.ByCgroup(1); !ok || got.ContainerID != "a" {
		t.Fatalf("a lost cgroup 1: %v", got)
	}
	if got, ok := r.ByCgroup(2); !ok || got.ContainerID != "b" {
		t.Fatalf("b lost cgroup 2: %v", got)
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry()
	const workers, rounds = 8, 500
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				id := fmt.Sprintf("w%d-%d", g, i%10)
				cg := uint64(g*1000 + i%10 + 1)
				if _, err := r.Put(wl(id, cg)); err != nil {
					t.Errorf("Put(%s): %v", id, err)
					return
				}
				r.Get(id)
				r.ByCgroup(cg)
				r.List()
				if i%3 == 0 {
					r.Remove(id)
				}
			}
			for i := 0; i < 10; i++ {
				r.Remove(fmt.Sprintf("w%d-%d", g, i))
			}
		}()
	}
	wg.Wait()
	if r.Len() != 0 || len(r.List()) != 0 {
		t.Fatalf("registry not empty after all removals: %s", ids(r.List()))
	}
	for cg := uint64(0); cg < workers*1000+20; cg++ {
		if w, ok := r.ByCgroup(cg); ok {
			t.Fatalf("cgroup index kept %d -> %v", cg, w)
		}
	}
}

// Two containers racing for one cgroup: exactly one wins.
func TestRegistryConcurrentSameCgroup(t *testing.T) {
	r := NewRegistry()
	const n = 16
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Put(wl(fmt.Sprintf("c%d", i), 42))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		}
	}
	if ok != 1 || r.Len() != 1 {
		t.Fatalf("%d Puts won cgroup 42, registry holds %d", ok, r.Len())
	}
}
