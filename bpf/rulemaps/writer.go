// Package rulemaps turns compiled profiles into the entries of the rule
// maps — each profile's rules per point, the address, name, binary, path
// and port sets their selectors refer to, and the workloads that use a
// profile — and writes and deletes them through the map handles it is
// given. Loading the programs that read these maps is bpf/enforcer's
// job.
package rulemaps

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/profiles"
)

// Writer writes profiles and workloads into the rule maps of one set of
// shared maps, and remembers which sets each profile's rules use, so
// that replacing or unloading a profile deletes them. It is safe for
// concurrent use.
type Writer struct {
	m *bpf.FallbackMaps

	mu      sync.Mutex // serialises profile writes
	nextSet uint32
	ports   portAllocator
	sets    map[uint32]*setWriter // per profile id: what its rules use
	track   map[uint32]uint32     // profile id -> workload flags it needs (TrackSock, relay)
}

// New returns a Writer of m's rule maps, which it takes for empty (Adopt
// takes over maps an earlier writer filled).
func New(m *bpf.FallbackMaps) *Writer {
	return &Writer{m: m, sets: map[uint32]*setWriter{}, track: map[uint32]uint32{}}
}

// newSetWriter starts the sets of one profile write.
func (w *Writer) newSetWriter() *setWriter {
	return &setWriter{m: w.m, nextSet: &w.nextSet, ports: &w.ports}
}

// profileFlags are the workload flags a profile needs: TrackSock, the
// relay bookkeeping at connects when it looks for relayed shells, and no
// process records when it turns process events off.
func profileFlags(p *profiles.Profile) uint32 {
	var f uint32
	if p.NoProcessEvents {
		f |= bpf.WorkloadNoProcEvents
	}
	if p.TrackSockets {
		f |= bpf.WorkloadTrackSockets
	}
	if len(p.Points[profiles.PointRelay]) > 0 || dialledStdio(p) {
		f |= bpf.WorkloadRelay
	}
	return f
}

// dialledStdio: an exec selector of p asks who dialled the stdio socket,
// which the relay bookkeeping of connects (net_procs) answers.
func dialledStdio(p *profiles.Profile) bool {
	for _, s := range p.Points[profiles.PointExec] {
		if s.StdioDialled {
			return true
		}
	}
	return false
}

// LoadProfile writes a compiled profile's selectors under id. Loading the
// same id again replaces them point by point: each point's rules are one
// map value, swapped atomically, and the sets the old rules used are
// deleted only afterwards.
func (w *Writer) LoadProfile(id uint32, p *profiles.Profile) error {
	if err := p.Validate(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	sw := w.newSetWriter()
	var all [profiles.NumPoints]bpf.FallbackPointRules
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		for i := range p.Points[pt] {
			sel, err := compileSelector(sw, &p.Points[pt][i])
			if err != nil {
				sw.release()
				return fmt.Errorf("profile %q: %s selector %d: %w", p.Name, pt, i, err)
			}
			all[pt].Sel[i] = sel
			all[pt].Uses |= sel.Match
		}
		all[pt].Count = uint32(len(p.Points[pt]))
	}
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		key := bpf.FallbackRuleKey{Profile: id, Point: uint32(pt)}
		var err error
		if all[pt].Count == 0 {
			if err = w.m.Rules.Delete(key); errors.Is(err, ebpf.ErrKeyNotExist) {
				err = nil
			}
		} else {
			err = w.m.Rules.Put(key, &all[pt])
		}
		if err != nil {
			// Points already written use the new sets and the others may
			// still use the old ones: keep both recorded under id, so that
			// UnloadProfile removes everything.
			w.recordSets(id, sw, true)
			return fmt.Errorf("write %s rules of profile %q: %w", pt, p.Name, err)
		}
	}
	w.track[id] = profileFlags(p)
	return w.recordSets(id, sw, false)
}

// recordSets makes sw the sets of profile id; the previous ones are
// released, or kept alongside when keepOld.
func (w *Writer) recordSets(id uint32, sw *setWriter, keepOld bool) error {
	old := w.sets[id]
	w.sets[id] = sw
	if old == nil {
		return nil
	}
	if keepOld {
		sw.absorb(old)
		return nil
	}
	return old.release()
}

// UnloadProfile deletes a profile's rules and then its sets. Workloads
// must have been moved off it first.
func (w *Writer) UnloadProfile(id uint32) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		key := bpf.FallbackRuleKey{Profile: id, Point: uint32(pt)}
		if err := w.m.Rules.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("delete %s rules of profile %d: %w", pt, id, err))
		}
	}
	if sw := w.sets[id]; sw != nil {
		errs = append(errs, sw.release())
		delete(w.sets, id)
	}
	delete(w.track, id)
	return errors.Join(errs...)
}

// SetWorkload enforces profile id on a cgroup and everything below it.
// disabled[point] has bit i set for selectors that cannot match this
// workload (its namespaces rule them out).
func (w *Writer) SetWorkload(cgroupID uint64, profile uint32, mode profiles.Mode, disabled [profiles.NumPoints]uint32) error {
	wl := bpf.FallbackWorkload{Profile: profile}
	if mode == profiles.ModeMonitor {
		wl.Flags |= bpf.WorkloadMonitor
	}
	w.mu.Lock()
	wl.Flags |= w.track[profile]
	w.mu.Unlock()
	copy(wl.Disabled[:], disabled[:])
	if err := w.m.Workloads.Put(cgroupID, &wl); err != nil {
		return fmt.Errorf("write workload of cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// RemoveWorkload stops enforcing on a cgroup; a cgroup not present is fine.
func (w *Writer) RemoveWorkload(cgroupID uint64) error {
	if err := w.m.Workloads.Delete(cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete workload of cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// WorkloadCgroups lists the cgroup IDs present in the workloads map.
func (w *Writer) WorkloadCgroups() ([]uint64, error) {
	var (
		ids []uint64
		key uint64
		val bpf.FallbackWorkload
	)
	it := w.m.Workloads.Iterate()
	for it.Next(&key, &val) {
		ids = append(ids, key)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate workloads map: %w", err)
	}
	return ids, nil
}

// PortSetsUsed is how many port sets the loaded profiles' rules hold, of
// bpf.MaxPortSets-1 (index 0 is never handed out).
func (w *Writer) PortSetsUsed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, used := range w.ports.used {
		if used {
			n++
		}
	}
	return n
}
