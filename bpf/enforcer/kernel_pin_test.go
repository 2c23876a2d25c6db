package enforcer

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/internal/bpftest"
	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/hostfs"
	"github.com/ocigate/ocigate/profiles"
)

// pinTestDir returns a fresh pin directory of the test's own on the host's
// bpffs (never the agent's default) and removes it at the end.
func pinTestDir(t *testing.T) (dir, cgroupRoot string) {
	t.Helper()
	bpftest.NeedRoot(t)
	if _, err := hostfs.EnsureAll(); err != nil {
		t.Fatal(err)
	}
	root, err := cgroupfilter.V2Mount()
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(hostfs.BPFFS, fmt.Sprintf("ocigate-test-%d-%s", os.Getpid(), t.Name()))
	if _, err := RemovePins(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := RemovePins(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return dir, root
}

// pinnedLinkID is the kernel's id of the link pinned under name.
func pinnedLinkID(t *testing.T, dir, name string) link.ID {
	t.Helper()
	l, err := link.LoadPinnedLink(filepath.Join(dir, "links", name), nil)
	if err != nil {
		t.Fatalf("pinned link %s: %v", name, err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

// linkExists reports whether the kernel still has a link with id.
func linkExists(t *testing.T, id link.ID) bool {
	t.Helper()
	l, err := link.NewFromID(id)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatalf("link %d: %v", id, err)
	}
	l.Close()
	return true
}

// staleLink pins, under DIR/links/NAME, a raw tracepoint link of a
// program that does nothing: what a program dropped by an upgrade leaves.
func staleLink(t *testing.T, dir, name string) link.ID {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.RawTracepoint, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_exec", Program: prog})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Pin(filepath.Join(dir, "links", name)); err != nil {
		t.Fatal(err)
	}
	info, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

// A pinned enforcer keeps enforcing after Close (an agent killed or
// stopped); a second Load takes the pins over without a gap — cgroup
// links get the new program in place, other links are replaced, a stale
// link is unpinned, set bookkeeping is rebuilt — and RemovePins ends it.
func TestPinnedEnforcementOutlivesTheEnforcer(t *testing.T) {
	r := firstPinnedLoad(t)
	r.restartOverTheSameObjects(r.leaveDebris())
	e := r.upgradeOverThePins()
	r.restoreAndRemove(e)
}

// pinRun is what TestPinnedEnforcementOutlivesTheEnforcer carries from
// one Load over its pin directory to the next.
type pinRun struct {
	t         *testing.T
	dir, root string
	k         *kernel           // the test cgroup, a workload on profile 7
	deny      *profiles.Profile // profile 7: no connect to 127.0.0.2:4444
	sets      bpftest.Sets      // the set entries of profile 7
	// The links the first Load pinned: a cgroup link, then another.
	connectLink, execLink link.ID
}

// load loads an enforcer over the run's pin directory.
func (r *pinRun) load() *Enforcer {
	r.t.Helper()
	e, err := Load(Options{CgroupRoot: r.root, PinDir: r.dir, Logger: zaptest.NewLogger(r.t)})
	if err != nil {
		r.t.Fatal(err)
	}
	return e
}

// wantDenied checks that the test cgroup's connect is refused.
func (r *pinRun) wantDenied(what string) {
	r.t.Helper()
	_, errno := r.k.helper("connect", "tcp4", "127.0.0.2:4444")
	wantErrno(r.t, what, errno, unix.EPERM)
}

// firstPinnedLoad loads and pins, registers the test cgroup on a denying
// profile, and closes the enforcer: its pins go on enforcing.
func firstPinnedLoad(t *testing.T) *pinRun {
	dir, root := pinTestDir(t)
	r := &pinRun{t: t, dir: dir, root: root}
	e1 := r.load()
	if st := e1.Pins(); st == nil || st.Inherited || st.Dir != dir || len(st.Unpinned) > 0 {
		t.Fatalf("first Load pin state %+v", st)
	}
	// One agent per pin directory; nobody unpins under a running one.
	if _, err := Load(Options{CgroupRoot: root, PinDir: dir}); err == nil || !strings.Contains(err.Error(), "in use by another running agent") {
		t.Fatalf("second Load on a directory in use: %v", err)
	}
	if _, err := RemovePins(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("RemovePins under a running enforcer: %v", err)
	}
	cgDir, cg := testCgroup(t, root)
	fd, err := unix.Open(cgDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	r.k = &kernel{t: t, e: e1, id: 7, dir: cgDir, cg: cg, cgFD: fd}
	r.deny = connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.2/32", "10.9.0.0/16"),
		Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 4444, Hi: 4444}}}, Action: profiles.ActionOverride})
	r.k.use(r.deny, [profiles.NumPoints]uint32{})
	r.wantDenied("with the first enforcer")
	r.sets = e1.setCounts(t)
	r.connectLink = pinnedLinkID(t, dir, "connect4")
	r.execLink = pinnedLinkID(t, dir, "track_exec")
	if err := e1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r.wantDenied("after Close, pinned")
	return r
}

// leaveDebris leaves what a crash in the middle of a profile write and
// an upgrade that dropped a program leave behind: a set entry no rule
// uses, and a stale pinned link, whose id it returns.
func (r *pinRun) leaveDebris() link.ID {
	addrSets, err := ebpf.LoadPinnedMap(filepath.Join(r.dir, "maps", "addr_sets"), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { addrSets.Close() })
	garbage := bpf.FallbackAddrKey{Prefixlen: 32 + 128, Set: 999, Addr: netip.MustParseAddr("::ffff:192.0.2.1").As16()}
	if err := addrSets.Put(garbage, uint8(1)); err != nil {
		r.t.Fatal(err)
	}
	return staleLink(r.t, r.dir, "dropped_prog")
}

// restartOverTheSameObjects loads the same objects again (an agent
// restarted): the pinned programs are taken over as they are, nothing
// is loaded; the stale link goes.
func (r *pinRun) restartOverTheSameObjects(stale link.ID) {
	t := r.t
	e2 := r.load()
	if st := e2.Pins(); !st.Inherited || !st.Reused || len(st.Updated)+len(st.Replaced) > 0 || !slices.Contains(st.Removed, "dropped_prog") {
		t.Fatalf("Load over the same objects' pins: %+v", st)
	}
	if id := pinnedLinkID(t, r.dir, "track_exec"); id != r.execLink {
		t.Errorf("track_exec link %d replaced by %d: want it taken over", r.execLink, id)
	}
	if linkExists(t, stale) {
		t.Errorf("stale link %d still attached", stale)
	}
	if len(e2.Backends()) == 0 || len(e2.named) == 0 {
		t.Fatalf("taken over without backends %v or programs %v", e2.Backends(), e2.named)
	}
	r.k.e = e2
	r.wantDenied("with the programs taken over")
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
}

// upgradeOverThePins loads other objects (an upgrade; here: no record of
// the load): every program is loaded and swapped in without a gap, and
// what the maps hold is inherited.
func (r *pinRun) upgradeOverThePins() *Enforcer {
	t := r.t
	if err := os.Remove(filepath.Join(r.dir, "state")); err != nil {
		t.Fatal(err)
	}
	stale := staleLink(t, r.dir, "dropped_prog")
	e := r.load()
	t.Cleanup(func() { e.Close() })
	st := e.Pins()
	t.Logf("third Load: %+v", st)
	if !st.Inherited || st.Reused || !slices.Contains(st.Updated, "connect4") || !slices.Contains(st.Replaced, "track_exec") ||
		!slices.Contains(st.Removed, "dropped_prog") {
		t.Fatalf("third Load pin state %+v", st)
	}
	if id := pinnedLinkID(t, r.dir, "connect4"); id != r.connectLink {
		t.Errorf("connect4 link %d replaced by %d: want the program updated in place", r.connectLink, id)
	}
	if id := pinnedLinkID(t, r.dir, "track_exec"); id == r.execLink || linkExists(t, r.execLink) {
		t.Errorf("track_exec link %d (now %d) not replaced and detached", r.execLink, id)
	}
	if linkExists(t, stale) {
		t.Errorf("stale link %d still attached", stale)
	}
	in := e.Inherited()
	if w, ok := in.Workloads[r.k.cg]; !ok || w.Profile != 7 || w.Monitor || !slices.Contains(in.Profiles, 7) {
		t.Fatalf("inherited %+v, want cgroup %d on profile 7", in, r.k.cg)
	}
	if got := e.setCounts(t); got != r.sets {
		t.Errorf("set entries after takeover %+v, want %+v (garbage deleted)", got, r.sets)
	}
	r.k.e = e
	r.wantDenied("with the second enforcer")
	return e
}

// restoreAndRemove does what the agent's restore does — a new profile
// id, the workload moved, the inherited id unloaded with every set it
// used — and then removes the pins: enforcement ends.
func (r *pinRun) restoreAndRemove(e *Enforcer) {
	t := r.t
	r.k.id = 8
	r.k.use(r.deny, [profiles.NumPoints]uint32{})
	if err := e.UnloadProfile(7); err != nil {
		t.Fatal(err)
	}
	if got := e.setCounts(t); got != r.sets {
		t.Errorf("set entries after moving to the new id %+v, want %+v", got, r.sets)
	}
	r.wantDenied("on the new profile id")
	if err := e.UnloadProfile(8); err != nil {
		t.Fatal(err)
	}
	if got := e.setCounts(t); got != (bpftest.Sets{}) {
		t.Errorf("set entries with no profile loaded %+v", got)
	}
	r.k.use(r.deny, [profiles.NumPoints]uint32{})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	removed, err := RemovePins(r.dir)
	if err != nil || len(removed) == 0 {
		t.Fatalf("RemovePins: %v, %v", removed, err)
	}
	if _, err := os.Stat(r.dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pin directory left: %v", err)
	}
	eventuallyErrno(t, "after RemovePins", unix.ECONNREFUSED, func() syscall.Errno {
		_, errno := r.k.helper("connect", "tcp4", "127.0.0.2:4444")
		return errno
	})
}

// A pinned map of another layout is refused before anything is loaded
// or detached, with the way out in the message.
func TestPinnedIncompatibleMapRefused(t *testing.T) {
	dir, root := pinTestDir(t)
	if err := os.MkdirAll(filepath.Join(dir, "maps"), 0o700); err != nil {
		t.Fatal(err)
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 4, MaxEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Pin(filepath.Join(dir, "maps", "workloads")); err != nil {
		t.Fatal(err)
	}
	_, err = Load(Options{CgroupRoot: root, PinDir: dir})
	if !errors.Is(err, ErrPinnedIncompatible) {
		t.Fatalf("Load over an incompatible pinned map: %v", err)
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"workloads", "ValueSize", "uninstall --bpf"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "maps", "workloads")); err != nil {
		t.Errorf("the pinned map was touched: %v", err)
	}
}

// A pinned map that only grew in a new build (the counters, when a point
// is added) is carried over: the Load succeeds, the map pinned at its
// path has the new size, and every count it held is kept.
func TestPinnedMapThatGrewCarriedOver(t *testing.T) {
	dir, root := pinTestDir(t)
	if err := os.MkdirAll(filepath.Join(dir, "maps"), 0o700); err != nil {
		t.Fatal(err)
	}
	spec, err := bpf.LoadFallback()
	if err != nil {
		t.Fatal(err)
	}
	small := spec.Maps["counters"].Copy()
	small.MaxEntries -= 8
	small.Pinning = ebpf.PinNone
	m, err := ebpf.NewMap(small)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]uint64, cpus)
	for i := range counts {
		counts[i] = uint64(1000 + i)
	}
	last := small.MaxEntries - 1
	for _, k := range []uint32{0, last} {
		if err := m.Put(k, counts); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Pin(filepath.Join(dir, "maps", "counters")); err != nil {
		t.Fatal(err)
	}
	e, err := Load(Options{CgroupRoot: root, PinDir: dir})
	if err != nil {
		t.Fatalf("Load over a pinned map that only grew: %v", err)
	}
	defer e.Close()
	pinned, err := ebpf.LoadPinnedMap(filepath.Join(dir, "maps", "counters"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	if pinned.MaxEntries() != spec.Maps["counters"].MaxEntries {
		t.Errorf("pinned counters have %d entries, want %d", pinned.MaxEntries(), spec.Maps["counters"].MaxEntries)
	}
	for _, k := range []uint32{0, last} {
		got := make([]uint64, cpus)
		if err := pinned.Lookup(k, &got); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] < counts[i] { // the programs may have counted since
				t.Errorf("counter %d on CPU %d: %d, want at least %d", k, i, got[i], counts[i])
			}
		}
	}
}

// Pinning somewhere that is not bpffs is refused, and RemovePins never
// deletes outside bpffs.
func TestPinDirMustBeBPFFS(t *testing.T) {
	bpftest.NeedRoot(t)
	root, err := cgroupfilter.V2Mount()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if _, err := Load(Options{CgroupRoot: root, PinDir: filepath.Join(tmp, "pins")}); err == nil || !strings.Contains(err.Error(), "not on a bpf file system") {
		t.Fatalf("Load with a pin dir on tmpfs: %v", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RemovePins(tmp); err == nil {
		t.Fatal("RemovePins outside bpffs succeeded")
	}
	if _, err := os.Stat(filepath.Join(tmp, "keep")); err != nil {
		t.Fatalf("RemovePins deleted outside bpffs: %v", err)
	}
}

// Scratch maps are never pinned: an earlier version's pinned scratch map,
// of another layout, neither blocks a Load nor stays pinned.
func TestPinnedScratchMapsIgnored(t *testing.T) {
	dir, root := pinTestDir(t)
	if err := os.MkdirAll(filepath.Join(dir, "maps"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"scratch", "dpath_scratch"} {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Pin(filepath.Join(dir, "maps", name)); err != nil {
			t.Fatal(err)
		}
	}
	e, err := Load(Options{CgroupRoot: root, PinDir: dir, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("Load over an old version's scratch maps: %v", err)
	}
	defer e.Close()
	if st := e.Pins(); !slices.Contains(st.Removed, "maps/scratch") || !slices.Contains(st.Removed, "maps/dpath_scratch") {
		t.Errorf("old scratch pins not removed: %+v", st)
	}
	for _, name := range []string{"scratch", "dpath_scratch"} {
		if _, err := os.Stat(filepath.Join(dir, "maps", name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("maps/%s still pinned: %v", name, err)
		}
	}
}

// copyEntries carries every entry of a hash into a larger one.
func TestCopyEntriesHash(t *testing.T) {
	bpftest.NeedRoot(t)
	small, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 4, MaxEntries: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	large, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 4, MaxEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer large.Close()
	for k := uint64(1); k <= 8; k++ {
		if err := small.Put(k, uint32(k*10)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := copyEntries(small, large); err != nil || n != 8 {
		t.Fatalf("copyEntries: %d, %v", n, err)
	}
	for k := uint64(1); k <= 8; k++ {
		var v uint32
		if err := large.Lookup(k, &v); err != nil || v != uint32(k*10) {
			t.Errorf("key %d: %d, %v", k, v, err)
		}
	}
}

// Releases skip the untrack until a socket has been tracked
// (socks_tracked): an upgrade over the pins of a build without that
// flag, whose sock_owners holds entries, must set it, or those sockets
// would never leave sock_owners.
func TestPinnedSockOwnersOfAnOlderBuildAreUntracked(t *testing.T) {
	dir, root := pinTestDir(t)
	opts := Options{CgroupRoot: root, PinDir: dir, Logger: zaptest.NewLogger(t)}
	e1, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := socksTracked(t, e1); got != 0 {
		t.Fatalf("socks_tracked %d with nothing tracked, want 0", got)
	}
	// What an older build leaves: a tracked socket, no flag, no record
	// of its load.
	if err := e1.maps.SockOwners.Put(uint64(1)<<62, uint32(1)); err != nil {
		t.Fatal(err)
	}
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "maps", "socks_tracked"), filepath.Join(dir, "state")} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	e2, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e2.Close() })
	if !e2.Pins().Inherited {
		t.Fatalf("pins not taken over: %+v", e2.Pins())
	}
	if got := socksTracked(t, e2); got != 1 {
		t.Errorf("socks_tracked %d over a sock_owners with entries, want 1", got)
	}
}

// socksTracked reads e's socks_tracked flag.
func socksTracked(t *testing.T, e *Enforcer) uint32 {
	t.Helper()
	var v uint32
	if err := e.maps.SocksTracked.Lookup(uint32(0), &v); err != nil {
		t.Fatal(err)
	}
	return v
}
