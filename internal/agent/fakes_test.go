package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/profiles"
)

// fakeEnforcer records what the agent writes into the kernel.
type fakeEnforcer struct {
	mu        sync.Mutex
	ops       []string
	workloads map[uint64]uint32 // cgroup -> profile id
	failLoad  error
	failSet   error
	failRem   error
	onSet     func(cgroupID uint64) // runs inside SetWorkload
	counters  bpf.Counters
	countErr  error
}

func newFakeEnforcer() *fakeEnforcer { return &fakeEnforcer{workloads: map[uint64]uint32{}} }

func (f *fakeEnforcer) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, fmt.Sprintf(format, args...))
}

func (f *fakeEnforcer) LoadProfile(id uint32, p *profiles.Profile) error {
	if f.failLoad != nil {
		return f.failLoad
	}
	f.record("load %d %s", id, p.Name)
	return nil
}

func (f *fakeEnforcer) SetWorkload(cg uint64, profile uint32, mode profiles.Mode) error {
	if f.onSet != nil {
		f.onSet(cg)
	}
	if f.failSet != nil {
		return f.failSet
	}
	f.record("set %d %d %s", cg, profile, mode)
	f.mu.Lock()
	f.workloads[cg] = profile
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
	f.mu.Unlock()
	return nil
}

func (f *fakeEnforcer) Backends() []bpf.PointBackend {
	return []bpf.PointBackend{{Point: "connect", Backend: "fallback", Mechanism: "cgroup/connect4", Skipped: []string{"lsm: not active"}}}
}

func (f *fakeEnforcer) Counters() (bpf.Counters, error) { return f.counters, f.countErr }

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

// fakeHost is a proc root and a cgroup root in a temp dir.
type fakeHost struct {
	t        *testing.T
	proc, cg string
}

func newFakeHost(t *testing.T) *fakeHost {
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

func auditProfile() *profiles.Profile {
	p := &profiles.Profile{Name: "audit", Policy: "ocigate-audit", Mode: profiles.ModeMonitor}
	p.Points[profiles.PointConnect] = []profiles.Selector{{Call: "tcp_connect", Action: profiles.ActionPost}}
	return p
}

func newTestAgent(t *testing.T, h *fakeHost, enf *fakeEnforcer) *Agent {
	t.Helper()
	a, err := New(Config{Enforcer: enf, Resolver: h.resolver(), Profiles: []*profiles.Profile{profiles.Default(), auditProfile()}})
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
		Identity: cgroupfilter.Identity{CgroupID: cg, CgroupPath: path}}
}
