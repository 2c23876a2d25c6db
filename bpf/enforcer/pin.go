package enforcer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/rulemaps"
)

// Pinning keeps the maps and links in a bpffs directory, so that they
// outlive the agent: while it is stopped, killed or being upgraded,
// every registered workload stays enforced. The layout is
//
//	DIR/maps/NAME    every shared map, by its name in the object
//	DIR/links/PROG   the link of every attached program, by program name
//
// A Load that finds pins takes them over: it loads its programs against
// the pinned maps (carrying over maps that only grew, grow.go; refusing
// maps whose layout changed otherwise), swaps each program in place — a
// cgroup link gets the new program atomically (BPF_LINK_UPDATE), any
// other link is replaced by a new one that is attached first and renamed
// over the old pin — and at the end unpins every link it did not take
// over, so programs dropped by an upgrade detach. At no point is a
// pinned program missing.

// DefaultPinDir is where the agent pins by default.
const DefaultPinDir = "/sys/fs/bpf/ocigate"

// ErrPinnedIncompatible is the error of a Load over a pinned map whose
// layout differs from this build's.
var ErrPinnedIncompatible = errors.New("pinned map incompatible")

// pinner pins and takes over the links of one Load.
type pinner struct {
	dir        string
	log        *zap.Logger
	cgroupID   uint64                 // of the cgroup root the programs attach to
	names      map[link.Link]string   // link -> its pin name
	mechanisms map[string]string      // pin name -> its program's mechanism
	claimed    map[string]bool        // pin names given out in this Load
	unpinned   []string               // programs whose link cannot be pinned
	replaced   map[string]struct{}    // pin names whose old link was replaced
	reused     map[link.Link]struct{} // links taken over (updated in place)
	lock       *os.File               // flock of dir: one agent per pin directory
}

// lockDir takes dir's exclusive lock, held until the Enforcer closes (or
// the process dies): two agents must never swap each other's programs.
func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("pin directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("pin directory %s is in use by another running agent", dir)
		}
		return nil, fmt.Errorf("pin directory: lock %s: %w", dir, err)
	}
	return f, nil
}

func newPinner(dir, cgroupRoot string, log *zap.Logger) (*pinner, error) {
	if err := checkBPFFS(filepath.Dir(filepath.Clean(dir))); err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Join(dir, "maps"), filepath.Join(dir, "links"), filepath.Join(dir, "progs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("pin directory: %w", err)
		}
	}
	fi, err := os.Stat(cgroupRoot)
	if err != nil {
		return nil, fmt.Errorf("pin directory: cgroup root: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	return &pinner{
		dir: dir, log: log, cgroupID: fi.Sys().(*syscall.Stat_t).Ino, lock: lock,
		names: map[link.Link]string{}, claimed: map[string]bool{}, mechanisms: map[string]string{},
		replaced: map[string]struct{}{}, reused: map[link.Link]struct{}{},
	}, nil
}

// checkBPFFS fails unless dir is on a bpf file system.
func checkBPFFS(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("pin directory: %s: %w", dir, err)
	}
	if int64(st.Type) != unix.BPF_FS_MAGIC {
		return fmt.Errorf("pin directory: %s is not on a bpf file system (mount -t bpf bpf %s)", dir, dir)
	}
	return nil
}

func (p *pinner) mapPath(name string) string  { return filepath.Join(p.dir, "maps", name) }
func (p *pinner) linkPath(name string) string { return filepath.Join(p.dir, "links", name) }

// scratchMap: a map whose contents live for one program run (per-CPU
// working memory). It is never pinned nor taken over: its layout is the
// programs' business, and a new agent's programs get a fresh one.
func scratchMap(name string) bool { return strings.HasPrefix(name, "scratch") }

// loadMaps creates the shared maps, or takes the pinned ones over when
// they are compatible, and pins those it created. It reports whether any
// map was taken over.
func (p *pinner) loadMaps(spec *ebpf.CollectionSpec, out *bpf.FallbackMaps) (inherited bool, err error) {
	repl, grown := map[string]*ebpf.Map{}, map[string]*ebpf.Map{}
	defer func() {
		for _, m := range repl {
			m.Close() // LoadAndAssign clones them
		}
		for _, m := range grown {
			m.Close()
		}
	}()
	var bad []string
	for _, name := range bpf.MapNames() {
		if scratchMap(name) {
			continue
		}
		ms, ok := spec.Maps[name]
		if !ok {
			return false, fmt.Errorf("map %s is not in the object", name)
		}
		m, err := ebpf.LoadPinnedMap(p.mapPath(name), nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("pinned map %s: %w", p.mapPath(name), err)
		}
		if err := ms.Compatible(m); err != nil {
			if growable(ms, m) {
				grown[name] = m
				continue
			}
			m.Close()
			bad = append(bad, fmt.Sprintf("%s (%v)", name, err))
			continue
		}
		repl[name] = m
	}
	if len(bad) > 0 {
		return false, fmt.Errorf("%w: the maps pinned in %s were made by another version of ocigate: %s; "+
			"the pinned programs keep enforcing with them. To replace them, stop the agent and run "+
			"`ocigate-agentd uninstall --bpf --pin-dir %s` (enforcement stops until the agent is started again)",
			ErrPinnedIncompatible, p.dir, strings.Join(bad, "; "), p.dir)
	}
	if err := spec.LoadAndAssign(out, &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
		return false, fmt.Errorf("load BPF maps: %w", err)
	}
	if err := p.carryGrown(grown, out); err != nil {
		out.Close()
		return false, err
	}
	for name, m := range bpf.MapsByName(out) {
		if _, ok := repl[name]; ok || scratchMap(name) || grown[name] != nil {
			continue
		}
		if err := m.Pin(p.mapPath(name)); err != nil {
			out.Close()
			return false, fmt.Errorf("pin map %s: %w", name, err)
		}
	}
	if len(repl) > 0 {
		p.log.Info("took over pinned maps", zap.String("dir", p.dir), zap.Int("maps", len(repl)))
	}
	return len(repl)+len(grown) > 0, nil
}

// carryGrown copies each pinned map of grown (pinned maps that only
// grew, grow.go) into its new map of out and pins that over it.
func (p *pinner) carryGrown(grown map[string]*ebpf.Map, out *bpf.FallbackMaps) error {
	maps := bpf.MapsByName(out)
	for name, old := range grown {
		m := maps[name]
		n, err := copyEntries(old, m)
		if err != nil {
			return fmt.Errorf("grow pinned map %s: %w", name, err)
		}
		if err := pinGrown(m, p.mapPath(name)); err != nil {
			return fmt.Errorf("grow pinned map %s: %w", name, err)
		}
		p.log.Info("grew a pinned map", zap.String("map", name), zap.Uint32("max_entries", m.MaxEntries()),
			zap.Int("entries_copied", n))
	}
	return nil
}

// attach attaches program pr (loaded as prog) and pins its link, taking
// over a link pinned under its name: a cgroup link on the same cgroup
// and attach type gets the new program in place; any other is replaced
// by the new link once that is attached.
func (p *pinner) attach(env *attachEnv, pr program, prog *ebpf.Program) (link.Link, error) {
	name := pr.name
	for i := 2; p.claimed[name]; i++ {
		name = fmt.Sprintf("%s-%d", pr.name, i)
	}
	p.claimed[name] = true
	p.mechanisms[name] = pr.mechanism
	path := p.linkPath(name)
	old, err := link.LoadPinnedLink(path, nil)
	switch {
	case errors.Is(err, os.ErrNotExist):
		old = nil
	case err != nil:
		p.log.Warn("pinned link unusable; replacing it", zap.String("pin", path), zap.Error(err))
		old = nil
	}
	if old != nil && p.updatable(env, pr, old) {
		if err := old.Update(prog); err == nil {
			p.names[old] = name
			p.reused[old] = struct{}{}
			return old, nil
		} else {
			p.log.Warn("pinned cgroup link not updated; replacing it", zap.String("pin", path), zap.Error(err))
		}
	}
	l, err := pr.attach(prog, env)
	if err != nil {
		if old != nil {
			old.Close()
		}
		return nil, err
	}
	p.names[l] = name
	if err := pinOver(l, path); err != nil {
		p.log.Warn("link not pinned: this program detaches when the agent exits", zap.String("program", pr.name), zap.Error(err))
		p.unpinned = append(p.unpinned, pr.name)
		if old != nil {
			_ = os.Remove(path) // its own fd below is the last one
		}
	}
	if old != nil {
		p.replaced[name] = struct{}{}
		old.Close() // unpinned by the rename: it detaches now
	}
	return l, nil
}

// updatable: old is a cgroup link on the cgroup root with the attach
// type pr's program expects, so BPF_LINK_UPDATE can swap the program.
func (p *pinner) updatable(env *attachEnv, pr program, old link.Link) bool {
	info, err := old.Info()
	if err != nil || info.Type != link.CgroupType || info.Cgroup() == nil {
		return false
	}
	ci := info.Cgroup()
	if ci.CgroupId != p.cgroupID {
		return false
	}
	for _, spec := range env.specs {
		if ps, ok := spec.Programs[pr.name]; ok {
			return ebpf.AttachType(ci.AttachType) == ps.AttachType
		}
	}
	return false
}

// pinOver pins l at path, atomically replacing what is pinned there: it
// is pinned beside and renamed over, so the path never goes missing.
func pinOver(l link.Link, path string) error {
	tmp := path + "-next" // bpffs refuses names with a dot
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove leftover %s: %w", tmp, err)
	}
	if err := l.Pin(tmp); err != nil {
		return fmt.Errorf("pin %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = l.Unpin()
		return fmt.Errorf("rename %s over %s: %w", tmp, path, err)
	}
	return nil
}

// commit unpins every link under DIR/links that this Load did not attach
// or take over (programs an upgrade dropped, candidates that failed):
// they detach. It returns the names removed.
func (p *pinner) commit(attached []link.Link) ([]string, error) {
	keep := map[string]bool{}
	for _, l := range attached {
		if name, ok := p.names[l]; ok {
			keep[name] = true
		}
	}
	entries, err := os.ReadDir(filepath.Join(p.dir, "links"))
	if err != nil {
		return nil, fmt.Errorf("list pinned links: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		if err := os.Remove(p.linkPath(e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("unpin stale link %s: %w", e.Name(), err))
			continue
		}
		removed = append(removed, e.Name())
	}
	errs = append(errs, p.unpinStaleMaps(&removed))
	sort.Strings(removed)
	return removed, errors.Join(errs...)
}

// unpinStaleMaps removes map pins this build does not pin: scratch maps
// an earlier version pinned, maps an upgrade dropped. Their programs were
// replaced by now; the pins only kept the maps alive.
func (p *pinner) unpinStaleMaps(removed *[]string) error {
	keep := map[string]bool{}
	for _, name := range bpf.MapNames() {
		keep[name] = !scratchMap(name)
	}
	entries, err := os.ReadDir(filepath.Join(p.dir, "maps"))
	if err != nil {
		return fmt.Errorf("list pinned maps: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		if err := os.Remove(p.mapPath(e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("unpin stale map %s: %w", e.Name(), err))
			continue
		}
		*removed = append(*removed, "maps/"+e.Name())
	}
	return errors.Join(errs...)
}

// PinState says what a Load did with the pin directory.
type PinState struct {
	Dir string `json:"dir"`
	// Inherited: the maps were taken over from an earlier agent.
	Inherited bool `json:"inherited"`
	// Reused: the pinned programs came from these same objects and were
	// taken over as they are; nothing was loaded.
	Reused bool `json:"reused,omitempty"`
	// Updated: cgroup links that got the new program in place; Replaced:
	// links replaced by new ones; Removed: stale links unpinned.
	Updated  []string `json:"updated,omitempty"`
	Replaced []string `json:"replaced,omitempty"`
	Removed  []string `json:"removed,omitempty"`
	// Unpinned: programs whose link could not be pinned (they detach
	// when the agent exits).
	Unpinned []string `json:"unpinned,omitempty"`

	lock *os.File // the directory's lock, released by Close
}

func (p *pinner) state(inherited bool, removed []string) *PinState {
	st := &PinState{Dir: p.dir, Inherited: inherited, Removed: removed, Unpinned: p.unpinned, lock: p.lock}
	for l := range p.reused {
		st.Updated = append(st.Updated, p.names[l])
	}
	for name := range p.replaced {
		st.Replaced = append(st.Replaced, name)
	}
	sort.Strings(st.Updated)
	sort.Strings(st.Replaced)
	return st
}

// Pins says what Load did with the pin directory; nil when not pinning.
func (e *Enforcer) Pins() *PinState { return e.pinState }

// RemovePins unpins everything a pinning agent left in dir — links
// first, so programs detach before their maps go — and removes dir. It
// refuses while an agent runs on dir. Only entries of ocigate's layout
// are removed; dir must be on a bpf file system.
func RemovePins(dir string) (removed []string, err error) {
	dir = filepath.Clean(dir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err := checkBPFFS(dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	var errs []error
	for _, sub := range []string{"links", "progs", "maps"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("list %s: %w", filepath.Join(dir, sub), err)
		}
		for _, e := range entries {
			path := filepath.Join(dir, sub, e.Name())
			if err := os.Remove(path); err != nil {
				errs = append(errs, fmt.Errorf("unpin %s: %w", path, err))
				continue
			}
			removed = append(removed, path)
		}
		if err := os.Remove(filepath.Join(dir, sub)); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", filepath.Join(dir, sub), err))
		}
	}
	if err := os.Remove(filepath.Join(dir, statePin)); err == nil {
		removed = append(removed, filepath.Join(dir, statePin))
	} else if !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("unpin %s: %w", filepath.Join(dir, statePin), err))
	}
	if err := os.Remove(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
	}
	return removed, errors.Join(errs...)
}

// loadMaps creates the shared maps; with opts.PinDir set it takes the
// pinned ones over (and inherits what they hold) or pins new ones.
func (e *Enforcer) loadMaps(spec *ebpf.CollectionSpec, opts Options) error {
	e.rules = rulemaps.New(&e.maps)
	if opts.PinDir == "" {
		if err := spec.LoadAndAssign(&e.maps, nil); err != nil {
			return fmt.Errorf("load BPF maps: %w", err)
		}
		return nil
	}
	p, err := newPinner(opts.PinDir, opts.CgroupRoot, opts.Logger)
	if err != nil {
		return err
	}
	inherited, err := p.loadMaps(spec, &e.maps)
	if err != nil {
		p.lock.Close()
		return err
	}
	e.pins = p
	e.pinState = &PinState{Dir: p.dir, Inherited: inherited, lock: p.lock}
	if inherited {
		if err := e.inherit(); err != nil {
			e.maps.Close()
			p.lock.Close()
			return fmt.Errorf("take over pinned maps in %s: %w", p.dir, err)
		}
	}
	return nil
}

// releasePins gives up the pin directory's lock (Close).
func (e *Enforcer) releasePins() error {
	if e.pinState == nil || e.pinState.lock == nil {
		return nil
	}
	err := e.pinState.lock.Close()
	e.pinState.lock = nil
	return err
}

// commitPins ends a pinning Load: stale links are unpinned and what was
// attached is recorded for the next Load.
func (e *Enforcer) commitPins(rec loadRecord) {
	if e.pins == nil {
		return
	}
	removed, err := e.pins.commit(e.allLinks())
	if err != nil {
		e.log.Warn("stale pinned links left", zap.Error(err))
	}
	if err := unpinStalePrograms(e.pins.dir, e.demand.detachedPrograms()); err != nil {
		e.log.Warn("stale pinned programs left", zap.Error(err))
	}
	if err := e.writeRecord(e.pins, rec); err != nil {
		e.log.Warn("load record not written: the next agent loads the programs again", zap.Error(err))
	}
	e.pinState = e.pins.state(e.pinState.Inherited, removed)
	e.log.Info("BPF objects pinned", zap.String("dir", e.pinState.Dir), zap.Bool("taken_over", e.pinState.Inherited),
		zap.Strings("updated_in_place", e.pinState.Updated), zap.Strings("replaced", e.pinState.Replaced),
		zap.Strings("unpinned_stale", e.pinState.Removed), zap.Strings("not_pinnable", e.pinState.Unpinned))
	e.pins = nil
}
