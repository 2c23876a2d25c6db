package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/apiserver"
	"github.com/ocigate/ocigate/internal/workload"
	"github.com/ocigate/ocigate/internal/workloadstate"
	"github.com/ocigate/ocigate/profiles"
)

func openState(t *testing.T) *workloadstate.Store {
	t.Helper()
	s, err := workloadstate.Open(filepath.Join(t.TempDir(), "workloads"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stateAgent(t *testing.T, h *fakeHost, enf *fakeEnforcer, st *workloadstate.Store, c *profiles.Catalog) *Agent {
	t.Helper()
	a, err := New(Config{Enforcer: enf, Resolver: h.resolver(), Catalog: c, State: st})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

func records(t *testing.T, st *workloadstate.Store) map[uint64]string {
	t.Helper()
	ws, errs := st.Load()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	out := map[uint64]string{}
	for _, w := range ws {
		out[w.CgroupID] = w.ContainerID + ":" + w.Profile
	}
	return out
}

// catalogWithout is the test catalog minus one profile and its policy.
func catalogWithout(t *testing.T, profile string) *profiles.Catalog {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "profiles", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, doc := range strings.Split(string(b), "\n---\n") {
		if strings.Contains(doc, "name: "+profile+"\n") || strings.Contains(doc, "name: ocigate-"+profile+"\n") {
			continue
		}
		keep = append(keep, doc)
	}
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(keep, "\n---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := profiles.NewCatalogFiles(false, path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Registrations leave records; unregistering and re-registering on
// another cgroup take them away.
func TestRegistrationRecords(t *testing.T) {
	h := newFakeHost(t)
	st := openState(t)
	a := stateAgent(t, h, newFakeEnforcer(), st, testCatalog(t))
	r1 := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r1); err != nil {
		t.Fatal(err)
	}
	r2 := h.registration("c2", 101, "/pods/c2")
	r2.Annotations = map[string]string{"team": "audit"}
	if _, err := a.Register(r2); err != nil {
		t.Fatal(err)
	}
	cg1, cg2 := r1.Identity.CgroupID, r2.Identity.CgroupID
	if got := records(t, st); !reflect.DeepEqual(got, map[uint64]string{cg1: "c1:default", cg2: "c2:audit"}) {
		t.Fatalf("records %v", got)
	}
	moved := h.registration("c1", 102, "/pods/c1-again")
	if _, err := a.Register(moved); err != nil {
		t.Fatal(err)
	}
	if err := a.Unregister("c2"); err != nil {
		t.Fatal(err)
	}
	if got := records(t, st); !reflect.DeepEqual(got, map[uint64]string{moved.Identity.CgroupID: "c1:default"}) {
		t.Fatalf("records after re-register and unregister %v", got)
	}
}

// A registration whose record cannot be written is refused before the
// map is touched; one whose map write fails leaves no record.
func TestRegistrationRecordFailures(t *testing.T) {
	h := newFakeHost(t)
	st := openState(t)
	enf := newFakeEnforcer()
	a := stateAgent(t, h, enf, st, testCatalog(t))
	enf.takeOps()
	enf.failSet = os.ErrDeadlineExceeded
	_, err := a.Register(h.registration("c1", 100, "/pods/c1"))
	var pe *api.PolicyError
	if !errors.As(err, &pe) || pe.FailurePolicy != api.FailClosed {
		t.Fatalf("registration with a failing map write: %v; want the profile's failure policy with it", err)
	}
	if got := records(t, st); len(got) != 0 {
		t.Fatalf("records after a failed map write %v", got)
	}
	enf.failSet = nil
	if err := os.RemoveAll(st.Dir()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register(h.registration("c2", 101, "/pods/c2")); err == nil || !strings.Contains(err.Error(), "workload state") {
		t.Fatalf("registration without a writable record: %v", err)
	}
	wantOps(t, enf)
	if a.Stats().StateErrors.Load() != 1 || a.Registry().Len() != 0 {
		t.Fatalf("stats %v, registry %d", a.Stats().Map(), a.Registry().Len())
	}
}

// A restarted agent takes over what the pinned maps and the records both
// know and whose cgroup still exists, moves it to fresh profile ids, and
// clears everything else.
func TestRestoreTakesOverPinnedWorkloads(t *testing.T) {
	h := newFakeHost(t)
	st := openState(t)
	enf := newFakeEnforcer()
	a := stateAgent(t, h, enf, st, testCatalog(t))
	var regs []*workload.Workload
	for i, id := range []string{"c1", "c2", "gone"} {
		r := h.registration(id, 100+i, "/pods/"+id)
		if id == "c2" {
			r.Annotations = map[string]string{"team": "audit"}
		}
		w, err := a.Register(r)
		if err != nil {
			t.Fatal(err)
		}
		regs = append(regs, w)
	}
	// While the agent is down: "gone" stops (its cgroup is removed, its
	// poststop could not reach the agent); a stray map entry and a record
	// without a map entry are left behind.
	// (The orphan's directory is made first: a cgroup id is never reused,
	// an inode of the test's file system may be.)
	orphan := &workload.Workload{ContainerID: "orphan", Identity: cgroupfilter.Identity{CgroupID: h.cgroup("/pods/orphan"), CgroupPath: "/pods/orphan"}}
	if err := os.Remove(filepath.Join(h.cg, "pods", "gone")); err != nil {
		t.Fatal(err)
	}
	enf2 := enf.restarted()
	enf2.workloads[999] = 2
	enf2.inherited.Workloads[999] = enforcer.InheritedWorkload{Profile: 2}
	if err := st.Put(orphan); err != nil {
		t.Fatal(err)
	}

	a2 := stateAgent(t, h, enf2, st, testCatalog(t))
	ops := enf2.takeOps()
	// New ids after the inherited ones (1-3), then the moves, then the
	// stray entry and the dead container's go, then the old ids.
	for _, want := range []string{"load 4 default", "load 5 audit", "load 6 ns",
		"set " + itoa(regs[0].CgroupID) + " 4 enforce", "set " + itoa(regs[1].CgroupID) + " 5 monitor",
		"remove " + itoa(regs[2].CgroupID), "remove 999", "unload 1", "unload 2", "unload 3"} {
		if !slices.Contains(ops, want) {
			t.Errorf("ops %q lack %q", ops, want)
		}
	}
	if got := enf2.mapEntries(); !reflect.DeepEqual(got, map[uint64]uint32{regs[0].CgroupID: 4, regs[1].CgroupID: 5}) {
		t.Fatalf("map entries %v", got)
	}
	var ids []string
	for _, w := range a2.Registry().List() {
		ids = append(ids, w.ContainerID+":"+w.Profile+":"+w.Mode)
		if !w.RegisteredAt.Equal(regs[0].RegisteredAt) && !w.RegisteredAt.Equal(regs[1].RegisteredAt) {
			t.Errorf("%s registered at %v: the original time is lost", w.ContainerID, w.RegisteredAt)
		}
	}
	if !reflect.DeepEqual(ids, []string{"c1:default:enforce", "c2:audit:monitor"}) {
		t.Fatalf("registry %v", ids)
	}
	if got := records(t, st); !reflect.DeepEqual(got, map[uint64]string{regs[0].CgroupID: "c1:default", regs[1].CgroupID: "c2:audit"}) {
		t.Fatalf("records %v", got)
	}
	// Events reported under the inherited ids still name their profile.
	if p, ok := a2.profileByID(enf.workloads[regs[1].CgroupID]); !ok || p.Name != "audit" {
		t.Fatalf("inherited id %d names %+v, want audit", enf.workloads[regs[1].CgroupID], p)
	}
	c := a2.Status().Counters
	if c["workloads_restored"] != 2 || c["workloads_dropped"] != 3 || c["workload_records"] != 2 {
		t.Fatalf("counters %v", c)
	}
	// The restored workloads are the agent's as any other.
	if err := a2.Unregister("c1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := enf2.mapEntries()[regs[0].CgroupID]; ok || len(records(t, st)) != 1 {
		t.Fatalf("c1 still there after Unregister: %v, %v", enf2.mapEntries(), records(t, st))
	}
}

// A restored workload whose profile the restarted agent does not have
// stays on its pinned rules until it goes or a reload finds it one.
func TestRestoreRetainsUnknownProfile(t *testing.T) {
	h := newFakeHost(t)
	st := openState(t)
	enf := newFakeEnforcer()
	a := stateAgent(t, h, enf, st, testCatalog(t))
	for i, id := range []string{"pinned", "plain"} {
		r := h.registration(id, 100+i, "/pods/"+id)
		if id == "pinned" {
			r.Annotations = map[string]string{"ocigate.io/profile": "audit"}
		}
		if _, err := a.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	enf2 := enf.restarted()
	a2 := stateAgent(t, h, enf2, st, catalogWithout(t, "audit"))
	ops := enf2.takeOps()
	if slices.Contains(ops, "unload 2") || !slices.Contains(ops, "unload 1") || !slices.Contains(ops, "unload 3") {
		t.Fatalf("ops %q: want the audit id 2 kept and 1, 3 unloaded", ops)
	}
	w, ok := a2.Registry().Get("pinned")
	if !ok || w.Profile != "audit" || w.Mode != "monitor" || !strings.Contains(w.ProfileReason, "kept on the rules pinned") {
		t.Fatalf("retained workload %+v", w)
	}
	if got := enf2.mapEntries()[w.CgroupID]; got != 2 {
		t.Fatalf("retained workload on profile id %d, want 2", got)
	}
	if p, ok := a2.profileByID(2); !ok || p.Name != "audit" {
		t.Fatalf("events of id 2 name profile %+v", p)
	}
	if c := a2.Status().Counters; c["profiles_retained"] != 1 {
		t.Fatalf("counters %v", c)
	}
	// A reload that still lacks it is refused and changes nothing; one
	// that has it moves the workload and drops the pinned rules.
	if err := a2.Reload(catalogWithout(t, "audit")); err == nil {
		t.Fatal("reload without the retained workload's profile succeeded")
	}
	enf2.takeOps()
	if err := a2.Reload(testCatalog(t)); err != nil {
		t.Fatal(err)
	}
	if ops := enf2.takeOps(); !slices.Contains(ops, "unload 2") {
		t.Fatalf("reload ops %q: the pinned rules of id 2 stay", ops)
	}
	w, _ = a2.Registry().Get("pinned")
	if w.Profile != "audit" || strings.Contains(w.ProfileReason, "pinned") || enf2.mapEntries()[w.CgroupID] == 2 {
		t.Fatalf("after reload %+v on id %d", w, enf2.mapEntries()[w.CgroupID])
	}
	if c := a2.Status().Counters; c["profiles_retained"] != 0 {
		t.Fatalf("counters %v", c)
	}
}

// Unregistering the last workload on retained rules unloads them.
func TestRetainedRulesGoWithTheLastWorkload(t *testing.T) {
	h := newFakeHost(t)
	st := openState(t)
	enf := newFakeEnforcer()
	a := stateAgent(t, h, enf, st, testCatalog(t))
	r := h.registration("pinned", 100, "/pods/pinned")
	r.Annotations = map[string]string{"ocigate.io/profile": "audit"}
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	enf2 := enf.restarted()
	a2 := stateAgent(t, h, enf2, st, catalogWithout(t, "audit"))
	enf2.takeOps()
	if err := a2.Unregister("pinned"); err != nil {
		t.Fatal(err)
	}
	wantOps(t, enf2, "remove "+itoa(r.Identity.CgroupID), "unload 2")
	if n, _ := st.Count(); n != 0 {
		t.Fatalf("%d records left", n)
	}
}

// Without records nothing is restored: every pinned entry goes.
func TestRestoreWithoutState(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	enf2 := enf.restarted()
	a2, err := New(Config{Enforcer: enf2, Resolver: h.resolver(), Catalog: testCatalog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if a2.Registry().Len() != 0 || len(enf2.mapEntries()) != 0 {
		t.Fatalf("registry %d, map %v", a2.Registry().Len(), enf2.mapEntries())
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// A refused registration carries the chosen profile's failurePolicy.
func TestRefusalCarriesFailurePolicy(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "profiles", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	open := strings.Replace(string(b), "  mode: monitor\n", "  mode: monitor\n  failurePolicy: open\n", 1)
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(open), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := profiles.NewCatalogFiles(false, path)
	if err != nil {
		t.Fatal(err)
	}
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := stateAgent(t, h, enf, nil, c)
	enf.failSet = os.ErrDeadlineExceeded
	for team, want := range map[string]string{"audit": api.FailOpen, "": api.FailClosed} {
		r := h.registration("c-"+team, 100, "/pods/c-"+team)
		r.Annotations = map[string]string{"team": team}
		_, err := a.Register(r)
		var pe *api.PolicyError
		if !errors.As(err, &pe) || pe.FailurePolicy != want {
			t.Errorf("team %q: %v (%+v), want failure policy %s", team, err, pe, want)
		}
	}
}

// afterServer serves a over the API with handle in front of it.
type afterServer func(ctx context.Context, req *api.Request) (*api.Response, error)

func (h afterServer) Handle(ctx context.Context, req *api.Request) (*api.Response, error) {
	return h(ctx, req)
}

// An unregistration served over the API removes the workload's record
// once the poststop hook has its answer, not before it; a registration
// of the same cgroup made meanwhile keeps its own record.
func TestUnregisterRecordGoesAfterTheAnswer(t *testing.T) {
	h := newFakeHost(t)
	st := openState(t)
	a := stateAgent(t, h, newFakeEnforcer(), st, testCatalog(t))
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	again := false
	srv := afterServer(func(ctx context.Context, req *api.Request) (*api.Response, error) {
		resp, err := a.Handle(ctx, req)
		if req.Op == api.OpUnregister && len(records(t, st)) != 1 {
			t.Error("the record went before the answer")
		}
		if again {
			r2 := h.registration("c2", 100, "/pods/c1")
			if _, err := a.Register(r2); err != nil {
				t.Error(err)
			}
		}
		return resp, err
	})
	path := filepath.Join(t.TempDir(), "agentd.sock")
	ln, err := apiserver.Listen(path, srv, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ln.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	unregister := func(id string) {
		t.Helper()
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		if _, err := api.Call(cctx, path, &api.Request{Op: api.OpUnregister, Unregister: &api.Unregistration{ContainerID: id}}); err != nil {
			t.Fatal(err)
		}
	}
	waitRecords := func(want map[uint64]string) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			got := records(t, st)
			if fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("records %v, want %v", got, want)
			}
		}
	}
	again = true
	unregister("c1")
	waitRecords(map[uint64]string{r.Identity.CgroupID: "c2:" + a.Registry().List()[0].Profile})
	again = false
	unregister("c2")
	waitRecords(map[uint64]string{})
}
