package agent

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/api"
)

func wantOps(t *testing.T, enf *fakeEnforcer, want ...string) {
	t.Helper()
	got := enf.takeOps()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("enforcer ops = %q, want %q", got, want)
	}
}

func TestNew(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	if _, err := New(Config{Enforcer: enf, Resolver: h.resolver(), Catalog: testCatalog(t)}); err != nil {
		t.Fatal(err)
	}
	// The default profile first, then by name.
	wantOps(t, enf, "load 1 default", "load 2 audit", "load 3 ns")

	if _, err := New(Config{Enforcer: enf}); err == nil || !strings.Contains(err.Error(), "needs a profile catalog") {
		t.Fatalf("no catalog: %v", err)
	}
	enf.takeOps()
	enf.failLoad = errors.New("map full")
	if _, err := New(Config{Enforcer: enf, Catalog: testCatalog(t)}); err == nil ||
		!strings.Contains(err.Error(), `load profile "default": map full`) {
		t.Fatalf("load failure: %v", err)
	}
	// The failed id is unloaded too: its rules may be partly written.
	wantOps(t, enf, "unload 1")
	// A failure half way unloads what was loaded.
	enf.failID = 2
	if _, err := New(Config{Enforcer: enf, Catalog: testCatalog(t)}); err == nil ||
		!strings.Contains(err.Error(), `load profile "audit": map full`) {
		t.Fatalf("load failure: %v", err)
	}
	wantOps(t, enf, "load 1 default", "unload 2", "unload 1")
}

func TestRegisterWritesMapThenRegistry(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	r := h.registration("c1", 100, "/pods/c1")
	enf.onSet = func(uint64) {
		if _, ok := a.Registry().Get("c1"); ok {
			t.Error("registry entry exists before the map is written")
		}
	}
	w, err := a.Register(r)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	wantOps(t, enf, fmt.Sprintf("set %d 1 enforce", r.Identity.CgroupID))
	if w.ContainerID != "c1" || w.Profile != "default" || w.ProfileReason != "default" || w.Mode != "enforce" || w.CgroupID != r.Identity.CgroupID ||
		w.CgroupPath != "/pods/c1" || w.Runtime != "runc" || w.Pid != 100 || w.RegisteredAt.IsZero() {
		t.Fatalf("workload %+v", w)
	}
	if got, ok := a.Registry().ByCgroup(r.Identity.CgroupID); !ok || got != w {
		t.Fatalf("registry ByCgroup = %v, %v", got, ok)
	}
	if n := a.Stats().Registrations.Load(); n != 1 {
		t.Fatalf("registrations counter %d", n)
	}
}

func TestRegisterProfileAnnotation(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	r := h.registration("c1", 100, "/pods/c1")
	r.Annotations = map[string]string{"ocigate.io/profile": "audit"}
	w, err := a.Register(r)
	if err != nil {
		t.Fatal(err)
	}
	if w.Profile != "audit" || w.Mode != "monitor" || w.ProfileReason != "annotation ocigate.io/profile=audit (spec.selectableBy admits every workload (all: true))" {
		t.Fatalf("workload profile %q mode %q reason %q", w.Profile, w.Mode, w.ProfileReason)
	}
	wantOps(t, enf, fmt.Sprintf("set %d 2 monitor", r.Identity.CgroupID))

	// The profile's spec.match picks it too.
	r = h.registration("c2", 101, "/pods/c2")
	r.Annotations = map[string]string{"team": "audit"}
	if w, err = a.Register(r); err != nil {
		t.Fatal(err)
	}
	if w.Profile != "audit" || w.ProfileReason != "annotation team=audit (spec.selectableBy admits every workload (all: true))" {
		t.Fatalf("workload profile %q reason %q", w.Profile, w.ProfileReason)
	}
	wantOps(t, enf, fmt.Sprintf("set %d 2 monitor", r.Identity.CgroupID))
}

func TestRegisterRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(h *fakeHost) *api.Registration
		want  []string
	}{
		{"cgroup id does not match the directory", func(h *fakeHost) *api.Registration {
			r := h.registration("c1", 100, "/pods/c1")
			r.Identity.CgroupID++
			return r
		}, []string{`container "c1"`, "cgroup /pods/c1 has id", "registration says"}},
		{"pid in another cgroup", func(h *fakeHost) *api.Registration {
			r := h.registration("c1", 100, "/pods/c1")
			h.cgroup("/elsewhere")
			h.process(100, "/elsewhere")
			return r
		}, []string{"pid 100 is in cgroup /elsewhere, registration says /pods/c1"}},
		{"pid gone", func(h *fakeHost) *api.Registration {
			r := h.registration("c1", 100, "/pods/c1")
			r.Pid = 101
			return r
		}, []string{`container "c1"`, "process 101"}},
		{"cgroup directory missing", func(h *fakeHost) *api.Registration {
			r := h.registration("c1", 100, "/pods/c1")
			r.Identity.CgroupPath = "/pods/none"
			return r
		}, []string{"does not exist"}},
		{"unknown profile", func(h *fakeHost) *api.Registration {
			r := h.registration("c1", 100, "/pods/c1")
			r.Annotations = map[string]string{"ocigate.io/profile": "strict-v9"}
			return r
		}, []string{`container "c1"`, `"strict-v9"`, "no such profile", "ocigate.io/profile"}},
		{"the root cgroup (a pid the host placed nowhere)", func(h *fakeHost) *api.Registration {
			r := h.registration("c1", 100, "/")
			return r
		}, []string{`container "c1"`, "root cgroup", "host's own processes"}},
		{"invalid registration", func(h *fakeHost) *api.Registration {
			return &api.Registration{ContainerID: "c1", Identity: api.Identity{CgroupPath: "/pods/c1"}}
		}, []string{"without cgroup_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t)
			enf := newFakeEnforcer()
			a := newTestAgent(t, h, enf)
			_, err := a.Register(tt.setup(h))
			if err == nil {
				t.Fatal("Register succeeded")
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			wantOps(t, enf)
			if a.Registry().Len() != 0 {
				t.Fatal("refused registration left a registry entry")
			}
		})
	}
}

func TestRegisterWithoutPidSkipsPidCheck(t *testing.T) {
	h := newFakeHost(t)
	a := newTestAgent(t, h, newFakeEnforcer())
	r := h.registration("c1", 100, "/pods/c1")
	r.Pid = 0
	if _, err := a.Register(r); err != nil {
		t.Fatalf("Register with pid 0: %v", err)
	}
}

func TestReRegisterMovesMapEntry(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	r1 := h.registration("c1", 100, "/pods/old")
	if _, err := a.Register(r1); err != nil {
		t.Fatal(err)
	}
	r2 := h.registration("c1", 200, "/pods/new")
	if _, err := a.Register(r2); err != nil {
		t.Fatal(err)
	}
	old, cur := r1.Identity.CgroupID, r2.Identity.CgroupID
	// The new entry is written before the old one goes: no gap.
	wantOps(t, enf, fmt.Sprintf("set %d 1 enforce", old), fmt.Sprintf("set %d 1 enforce", cur), fmt.Sprintf("remove %d", old))
	if got := enf.mapEntries(); !reflect.DeepEqual(got, map[uint64]uint32{cur: 1}) {
		t.Fatalf("map entries %v", got)
	}
	if _, ok := a.Registry().ByCgroup(old); ok || a.Registry().Len() != 1 {
		t.Fatal("registry still indexes the old cgroup")
	}
	// Same cgroup again: only a rewrite.
	if _, err := a.Register(r2); err != nil {
		t.Fatal(err)
	}
	wantOps(t, enf, fmt.Sprintf("set %d 1 enforce", cur))
}

func TestRegisterCgroupOfAnotherContainer(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	if _, err := a.Register(h.registration("c1", 100, "/pods/shared")); err != nil {
		t.Fatal(err)
	}
	enf.takeOps()
	_, err := a.Register(h.registration("c2", 101, "/pods/shared"))
	if err == nil || !strings.Contains(err.Error(), `already registered by container "c1"`) {
		t.Fatalf("got %v", err)
	}
	wantOps(t, enf)
}

func TestUnregister(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	enf.takeOps()
	if err := a.Unregister("c1"); err != nil {
		t.Fatal(err)
	}
	wantOps(t, enf, fmt.Sprintf("remove %d", r.Identity.CgroupID))
	if a.Registry().Len() != 0 || len(enf.mapEntries()) != 0 {
		t.Fatal("entry left after Unregister")
	}
	if a.Stats().Unregistrations.Load() != 1 {
		t.Fatal("unregistrations not counted")
	}
	// Unknown and repeated ids are fine and touch nothing.
	for _, id := range []string{"c1", "never-seen"} {
		if err := a.Unregister(id); err != nil {
			t.Fatalf("Unregister(%s): %v", id, err)
		}
	}
	wantOps(t, enf)
	if a.Stats().Unregistrations.Load() != 1 {
		t.Fatal("no-op unregister counted")
	}
}

func TestSetWorkloadFailureLeavesNothing(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	enf.failSet = errors.New("workloads map full")
	_, err := a.Register(h.registration("c1", 100, "/pods/c1"))
	if err == nil || !strings.Contains(err.Error(), "workloads map full") || !strings.Contains(err.Error(), `"c1"`) {
		t.Fatalf("got %v", err)
	}
	if a.Registry().Len() != 0 || a.Stats().Registrations.Load() != 0 {
		t.Fatal("failed registration recorded")
	}
}

func TestRemoveWorkloadFailureKeepsEntry(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	if _, err := a.Register(h.registration("c1", 100, "/pods/c1")); err != nil {
		t.Fatal(err)
	}
	enf.failRem = errors.New("bpf: permission denied")
	err := a.Unregister("c1")
	if err == nil || !strings.Contains(err.Error(), "bpf: permission denied") {
		t.Fatalf("got %v", err)
	}
	if _, ok := a.Registry().Get("c1"); !ok {
		t.Fatal("registry entry dropped although the map entry stayed")
	}
	// Once the kernel cooperates the retry succeeds.
	enf.failRem = nil
	if err := a.Unregister("c1"); err != nil || a.Registry().Len() != 0 {
		t.Fatalf("retry: %v, %d left", err, a.Registry().Len())
	}
}

func TestStatus(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	enf.counters = enforcer.Counters{EventsLost: 3, Points: map[string]enforcer.PointCounters{"connect": {Evaluated: 10, Posted: 1, Denied: 4, Killed: 0}}}
	a := newTestAgent(t, h, enf)
	for _, id := range []string{"b", "a"} {
		if _, err := a.Register(h.registration(id, 100+len(id)+int(id[0]), "/pods/"+id)); err != nil {
			t.Fatal(err)
		}
	}
	st := a.Status()
	if len(st.Backends) != 1 || !reflect.DeepEqual(st.Backends[0], api.Backend{Point: "connect", Backend: "fallback", Mechanism: "cgroup/connect4", Skipped: []string{"lsm: not active"}}) {
		t.Fatalf("backends %+v", st.Backends)
	}
	if !reflect.DeepEqual(st.Profiles, []string{"audit", "default", "ns"}) {
		t.Fatalf("profiles %v", st.Profiles)
	}
	if len(st.Workloads) != 2 || st.Workloads[0].ContainerID != "a" || st.Workloads[1].ContainerID != "b" {
		t.Fatalf("workloads %+v", st.Workloads)
	}
	want := map[string]uint64{"registrations": 2, "kernel_events_lost": 3, "connect_evaluated": 10,
		"connect_posted": 1, "connect_denied": 4, "connect_killed": 0, "unregistrations": 0}
	for k, v := range want {
		if got, ok := st.Counters[k]; !ok || got != v {
			t.Errorf("counter %s = %d (present %v), want %d", k, got, ok, v)
		}
	}
	if st.StartedAt.IsZero() {
		t.Error("no start time")
	}
	// Kernel counters unavailable: the rest of the status still comes.
	enf.countErr = errors.New("no maps")
	st = a.Status()
	if _, ok := st.Counters["kernel_events_lost"]; ok || st.Counters["registrations"] != 2 || len(st.Workloads) != 2 {
		t.Fatalf("status without kernel counters: %+v", st.Counters)
	}
}

func TestHandle(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	ctx := context.Background()
	r := h.registration("c1", 100, "/pods/c1")
	resp, err := a.Handle(ctx, &api.Request{Op: api.OpRegister, Register: r})
	if err != nil || resp.Workload == nil || resp.Workload.ContainerID != "c1" {
		t.Fatalf("register: %+v, %v", resp, err)
	}
	resp, err = a.Handle(ctx, &api.Request{Op: api.OpStatus})
	if err != nil || resp.Status == nil || len(resp.Status.Workloads) != 1 {
		t.Fatalf("status: %+v, %v", resp, err)
	}
	enf.failRem = errors.New("busy")
	if _, err := a.Handle(ctx, &api.Request{Op: api.OpUnregister, Unregister: &api.Unregistration{ContainerID: "c1"}}); err == nil {
		t.Fatal("unregister error swallowed")
	}
	enf.failRem = nil
	if _, err := a.Handle(ctx, &api.Request{Op: api.OpUnregister, Unregister: &api.Unregistration{ContainerID: "c1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Handle(ctx, &api.Request{Op: "reboot"}); err == nil || !strings.Contains(err.Error(), `unknown op "reboot"`) {
		t.Fatalf("unknown op: %v", err)
	}
	if _, err := a.Handle(ctx, &api.Request{Op: api.OpRegister, Register: &api.Registration{ContainerID: "x"}}); err == nil {
		t.Fatal("invalid register accepted")
	}
}
