package agent

import (
	"strconv"
	"testing"
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/workload"
)

func TestRecentWorkloads(t *testing.T) {
	var r recentWorkloads
	t0 := time.Unix(1000, 0)
	w := &workload.Workload{ContainerID: "c1", Identity: cgroupfilter.Identity{CgroupID: 7}}
	r.add(w, t0)
	if got, ok := r.get(7, t0.Add(recentGrace)); !ok || got.ContainerID != "c1" {
		t.Fatalf("within the grace period: %v %v", got, ok)
	}
	if _, ok := r.get(7, t0.Add(recentGrace+time.Second)); ok {
		t.Fatal("kept past the grace period")
	}
	if _, ok := r.get(8, t0); ok {
		t.Fatal("an unknown cgroup found")
	}
	// Bounded: the oldest goes first.
	for i := 0; i < recentMax+10; i++ {
		r.add(&workload.Workload{Identity: cgroupfilter.Identity{CgroupID: uint64(100 + i)}}, t0.Add(time.Millisecond))
	}
	if len(r.byID) > recentMax || len(r.order) > recentMax {
		t.Fatalf("%d entries, %d in order; at most %d", len(r.byID), len(r.order), recentMax)
	}
	if _, ok := r.get(100, t0.Add(time.Millisecond)); ok {
		t.Fatal("the oldest entry survived the bound")
	}
	// Expired entries go at the next add.
	r.add(&workload.Workload{Identity: cgroupfilter.Identity{CgroupID: 1}}, t0.Add(time.Hour))
	if len(r.byID) != 1 {
		t.Fatalf("%d entries after an hour, want 1", len(r.byID))
	}
}

// TestEventWorkloadAcrossRemoval looks a workload up, as the event reader
// does, while it is unregistered: every lookup must find it, registered
// or recently removed, never neither (events then lost their container).
func TestEventWorkloadAcrossRemoval(t *testing.T) {
	h := newFakeHost(t)
	a := newTestAgent(t, h, newFakeEnforcer())
	for i := 0; i < 300; i++ {
		id := "c" + strconv.Itoa(i)
		w, err := a.Register(h.registration(id, 100, "/pods/"+id))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := a.Unregister(id); err != nil {
				t.Error(err)
			}
		}()
		for stop := false; !stop; {
			select {
			case <-done:
				stop = true
			default:
			}
			if _, ok := a.eventWorkload(w.CgroupID); !ok {
				t.Fatalf("round %d: workload neither registered nor recently removed", i)
			}
		}
	}
}
