package agent

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/profiles"
)

// fakeEnforcer records what the agent writes into the kernel.
type fakeEnforcer struct {
	mu        sync.Mutex
	ops       []string
	workloads map[uint64]uint32                     // cgroup -> profile id
	disabled  map[uint64][profiles.NumPoints]uint32 // cgroup -> disabled selectors
	modes     map[uint64]profiles.Mode              // cgroup -> mode
	loaded    map[uint32]*profiles.Profile          // profile id -> profile
	failLoad  error
	failID    uint32 // with failLoad: fail only this id (0: every id)
	failSet   error
	failSetCg uint64 // with failSet: fail only this cgroup (0: every cgroup)
	failRem   error
	onSet     func(cgroupID uint64) // runs inside SetWorkload
	counters  enforcer.Counters
	countErr  error
	progStats []enforcer.ProgramStat
	mapFill   []enforcer.MapFill
	inherited enforcer.Inherited      // what "pinned maps" held at its load
	backends  []enforcer.PointBackend // nil: connect by the fallback, nothing else
	// onDemand: the per-packet points, attached (true) or not (PointSwitch);
	// failAttach: points whose attach fails.
	onDemand   map[string]bool
	failAttach map[string]error
}

func newFakeEnforcer() *fakeEnforcer {
	return &fakeEnforcer{workloads: map[uint64]uint32{}, disabled: map[uint64][profiles.NumPoints]uint32{},
		modes: map[uint64]profiles.Mode{}, loaded: map[uint32]*profiles.Profile{}}
}

func (f *fakeEnforcer) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, fmt.Sprintf(format, args...))
}

func (f *fakeEnforcer) LoadProfile(id uint32, p *profiles.Profile) error {
	if err := p.Validate(); err != nil { // as the kernel side does
		return err
	}
	if f.failLoad != nil && (f.failID == 0 || f.failID == id) {
		return f.failLoad
	}
	f.record("load %d %s", id, p.Name)
	f.mu.Lock()
	f.loaded[id] = p
	f.mu.Unlock()
	return nil
}

func (f *fakeEnforcer) UnloadProfile(id uint32) error {
	f.record("unload %d", id)
	f.mu.Lock()
	delete(f.loaded, id)
	f.mu.Unlock()
	return nil
}

func (f *fakeEnforcer) SetWorkload(cg uint64, profile uint32, mode profiles.Mode, disabled [profiles.NumPoints]uint32) error {
	if f.onSet != nil {
		f.onSet(cg)
	}
	if f.failSet != nil && (f.failSetCg == 0 || f.failSetCg == cg) {
		return f.failSet
	}
	f.record("set %d %d %s", cg, profile, mode)
	f.mu.Lock()
	f.workloads[cg] = profile
	f.disabled[cg] = disabled
	f.modes[cg] = mode
	f.mu.Unlock()
	return nil
}

func (f *fakeEnforcer) RemoveWorkload(cg uint64) error {
	if f.failRem != nil {
		return f.failRem
	}
	f.record("remove %d", cg)
	f.mu.Lock()
	delete(f.workloads, cg)
	delete(f.disabled, cg)
	f.mu.Unlock()
	return nil
}

func (f *fakeEnforcer) Backends() []enforcer.PointBackend {
	out := f.backends
	if out == nil {
		out = []enforcer.PointBackend{{Point: "connect", Backend: "fallback", Mechanism: "cgroup/connect4", Skipped: []string{"lsm: not active"}}}
	}
	for _, pt := range f.OnDemandPoints() {
		f.mu.Lock()
		attached := f.onDemand[pt]
		f.mu.Unlock()
		out = append(slices.Clip(out), enforcer.PointBackend{Point: pt, Backend: "tracepoint", Mechanism: "tracepoint/" + pt, Detached: !attached})
	}
	return out
}

func (f *fakeEnforcer) Counters() (enforcer.Counters, error) { return f.counters, f.countErr }

func (f *fakeEnforcer) ProgramStats() ([]enforcer.ProgramStat, error) { return f.progStats, nil }

func (f *fakeEnforcer) MapFill() ([]enforcer.MapFill, error) { return f.mapFill, nil }

func (f *fakeEnforcer) Inherited() enforcer.Inherited { return f.inherited }

func (f *fakeEnforcer) OnDemandPoints() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.onDemand))
}

func (f *fakeEnforcer) AttachPoint(point string) error {
	f.mu.Lock()
	attached, ok := f.onDemand[point]
	err := f.failAttach[point]
	f.mu.Unlock()
	if !ok || attached {
		return nil
	}
	if err != nil {
		return err
	}
	f.record("attach %s", point)
	f.mu.Lock()
	f.onDemand[point] = true
	f.mu.Unlock()
	return nil
}

func (f *fakeEnforcer) DetachPoint(point string) error {
	f.mu.Lock()
	attached := f.onDemand[point]
	f.mu.Unlock()
	if !attached {
		return nil
	}
	f.record("detach %s", point)
	f.mu.Lock()
	f.onDemand[point] = false
	f.mu.Unlock()
	return nil
}

// restarted is the enforcer a restarted agent gets when f's maps were
// pinned: the same entries, reported as inherited.
func (f *fakeEnforcer) restarted() *fakeEnforcer {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := newFakeEnforcer()
	n.inherited.Workloads = map[uint64]enforcer.InheritedWorkload{}
	for cg, id := range f.workloads {
		n.workloads[cg], n.disabled[cg], n.modes[cg] = id, f.disabled[cg], f.modes[cg]
		n.inherited.Workloads[cg] = enforcer.InheritedWorkload{Profile: id, Disabled: f.disabled[cg], Monitor: f.modes[cg] == profiles.ModeMonitor}
	}
	for id, p := range f.loaded {
		n.loaded[id] = p
		n.inherited.Profiles = append(n.inherited.Profiles, id)
	}
	sort.Slice(n.inherited.Profiles, func(i, j int) bool { return n.inherited.Profiles[i] < n.inherited.Profiles[j] })
	return n
}

func (f *fakeEnforcer) takeOps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := f.ops
	f.ops = nil
	return ops
}

func (f *fakeEnforcer) mapEntries() map[uint64]uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[uint64]uint32{}
	for k, v := range f.workloads {
		out[k] = v
	}
	return out
}

// disabledOf returns the masks last written for a cgroup.
func (f *fakeEnforcer) disabledOf(cg uint64) ([profiles.NumPoints]uint32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.disabled[cg]
	return d, ok
}

// isLoaded reports whether a profile id is loaded.
func (f *fakeEnforcer) isLoaded(id uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loaded[id] != nil
}

// fakeHost is a proc root and a cgroup root in a temp dir.
type fakeHost struct {
	t        testing.TB
	proc, cg string
}

func newFakeHost(t testing.TB) *fakeHost {
	dir := t.TempDir()
	return &fakeHost{t: t, proc: filepath.Join(dir, "proc"), cg: filepath.Join(dir, "cgroup")}
}

func (h *fakeHost) resolver() cgroupfilter.Resolver {
	return cgroupfilter.Resolver{ProcRoot: h.proc, CgroupRoot: h.cg}
}

// cgroup creates a cgroup directory and returns its ID (the inode).
func (h *fakeHost) cgroup(path string) uint64 {
	h.t.Helper()
	full := filepath.Join(h.cg, path)
	if err := os.MkdirAll(full, 0o755); err != nil {
		h.t.Fatal(err)
	}
	fi, err := os.Stat(full)
	if err != nil {
		h.t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// process places pid in the cgroup at path.
func (h *fakeHost) process(pid int, path string) {
	h.t.Helper()
	dir := filepath.Join(h.proc, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte("0::"+path+"\n"), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// hostNamespaces gives pid 1 namespace files, as the agent reads the
// host's namespaces for host_ns, and returns their IDs.
func (h *fakeHost) hostNamespaces() cgroupfilter.NamespaceIDs {
	h.t.Helper()
	h.process(1, "/")
	dir := filepath.Join(h.proc, "1", "ns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	for _, n := range []string{"mnt", "pid", "net", "uts", "ipc", "cgroup", "user", "time"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	ns, err := h.resolver().Namespaces(1)
	if err != nil {
		h.t.Fatal(err)
	}
	return ns
}

// testCatalog is testdata/profiles/agent.yaml: default (id 1), audit (2)
// and ns (3).
func testCatalog(t testing.TB) *profiles.Catalog {
	t.Helper()
	c, err := profiles.NewCatalogFiles(false, filepath.Join("testdata", "profiles", "agent.yaml"))
	if err != nil {
		t.Fatalf("test catalog: %v", err)
	}
	return c
}

func newTestAgent(t *testing.T, h *fakeHost, enf *fakeEnforcer) *Agent {
	t.Helper()
	a, err := New(Config{Enforcer: enf, Resolver: h.resolver(), Catalog: testCatalog(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	enf.takeOps()
	return a
}

// registration of container id with pid living in the cgroup at path.
func (h *fakeHost) registration(id string, pid int, path string) *api.Registration {
	cg := h.cgroup(path)
	h.process(pid, path)
	return &api.Registration{ContainerID: id, Runtime: "runc", Pid: pid,
		Identity: api.Identity{CgroupID: cg, CgroupPath: path}}
}
