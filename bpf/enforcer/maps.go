package enforcer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/profiles"
)

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
	if len(p.Points[profiles.PointRelay]) > 0 {
		f |= bpf.WorkloadRelay
	}
	return f
}

// LoadProfile writes a compiled profile's selectors under id. Loading the
// same id again replaces them point by point: each point's rules are one
// map value, swapped atomically, and the sets the old rules used are
// deleted only afterwards.
func (e *Enforcer) LoadProfile(id uint32, p *profiles.Profile) error {
	if err := p.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := &setWriter{m: &e.maps, nextSet: &e.nextSet, ports: &e.ports}
	var all [profiles.NumPoints]bpf.FallbackPointRules
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		for i := range p.Points[pt] {
			sel, err := compileSelector(w, &p.Points[pt][i])
			if err != nil {
				w.release()
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
			if err = e.maps.Rules.Delete(key); errors.Is(err, ebpf.ErrKeyNotExist) {
				err = nil
			}
		} else {
			err = e.maps.Rules.Put(key, &all[pt])
		}
		if err != nil {
			// Points already written use the new sets and the others may
			// still use the old ones: keep both recorded under id, so that
			// UnloadProfile removes everything.
			e.recordSets(id, w, true)
			return fmt.Errorf("write %s rules of profile %q: %w", pt, p.Name, err)
		}
	}
	if e.track == nil {
		e.track = map[uint32]uint32{}
	}
	e.track[id] = profileFlags(p)
	return e.recordSets(id, w, false)
}

// recordSets makes w the sets of profile id; the previous ones are
// released, or kept alongside when keepOld.
func (e *Enforcer) recordSets(id uint32, w *setWriter, keepOld bool) error {
	if e.sets == nil {
		e.sets = map[uint32]*setWriter{}
	}
	old := e.sets[id]
	e.sets[id] = w
	if old == nil {
		return nil
	}
	if keepOld {
		w.absorb(old)
		return nil
	}
	return old.release()
}

func compileSelector(w *setWriter, s *profiles.Selector) (bpf.FallbackSelector, error) {
	k := bpf.FallbackSelector{Group: uint8(s.Group)}
	k.Families, k.Match = maskOf(s.Families, k.Match, bpf.MatchFamily)
	k.Types, k.Match = maskOf(s.SockTypes, k.Match, bpf.MatchType)
	k.States, k.Match = maskOf(s.States, k.Match, bpf.MatchState)
	k.Fds, k.Match = maskOf(s.Fds, k.Match, bpf.MatchNewFD)
	if len(s.Protocols) > 0 {
		k.Match |= bpf.MatchProtocol
		for _, p := range s.Protocols {
			k.Protocols[p>>6] |= 1 << (p & 63)
		}
	}
	var err error
	for _, a := range []struct {
		m         profiles.AddrMatch
		set       *uint32
		in, notIn uint32
	}{{s.Daddr, &k.DaddrSet, bpf.MatchDaddr, bpf.MatchDaddrNot}, {s.Saddr, &k.SaddrSet, bpf.MatchSaddr, bpf.MatchSaddrNot}} {
		if !a.m.Set() {
			continue
		}
		if *a.set, err = w.addrs(a.m.Prefixes); err != nil {
			return k, err
		}
		k.Match |= pickFlag(a.m.Not, a.in, a.notIn)
	}
	for _, p := range []struct {
		m         profiles.PortMatch
		set       *uint32
		in, notIn uint32
	}{{s.Dport, &k.DportSet, bpf.MatchDport, bpf.MatchDportNot}, {s.Sport, &k.SportSet, bpf.MatchSport, bpf.MatchSportNot}} {
		if !p.m.Set() {
			continue
		}
		if *p.set, err = w.portSet(p.m.Ranges); err != nil {
			return k, err
		}
		k.Match |= pickFlag(p.m.Not, p.in, p.notIn)
	}
	if len(s.Names.Names) > 0 {
		if k.NameSet, err = w.names(s.Names.Names); err != nil {
			return k, err
		}
		k.Match |= pickFlag(s.Names.Not, bpf.MatchName, bpf.MatchNameNot)
	}
	for _, b := range s.Binaries {
		not := strings.HasPrefix(b.Operator, "Not")
		switch strings.TrimPrefix(b.Operator, "Not") {
		case profiles.BinaryIn:
			k.BinSet, err = w.binaries(b.Values)
			k.Match |= pickFlag(not, bpf.MatchBin, bpf.MatchBinNot)
		case profiles.BinaryPrefix:
			k.PrefixSet, err = w.pathPrefixes(b.Values, false)
			k.Match |= pickFlag(not, bpf.MatchBinPrefix, bpf.MatchBinPrefixNot)
		case profiles.BinaryPostfix:
			k.PostfixSet, err = w.pathPrefixes(b.Values, true)
			k.Match |= pickFlag(not, bpf.MatchBinPostfix, bpf.MatchBinPostfixNot)
		}
		if err != nil {
			return k, err
		}
	}
	if s.StdioInet {
		k.Match |= bpf.MatchStdioInet
	}
	if s.Relayed {
		k.Match |= bpf.MatchRelayed
	}
	if s.Fileless {
		k.Match |= bpf.MatchFileless
	}
	if s.Variant != 0 {
		k.Match |= bpf.MatchVariant
		k.Variant = s.Variant
	}
	k.Action, k.Err, k.Signal = kernelAction(s)
	if s.NoPost {
		k.Flags |= bpf.SelectorNoPost
	}
	if s.Monitor {
		k.Flags |= bpf.SelectorMonitor
	}
	return k, nil
}

func kernelAction(s *profiles.Selector) (action uint8, errno int32, signal uint8) {
	errno = int32(s.Errno)
	if errno == 0 {
		errno = 1 // EPERM
	}
	switch s.Action {
	case profiles.ActionOverride:
		return bpf.ActionDeny, errno, 0
	case profiles.ActionNotifyEnforcer:
		return bpf.ActionDeny, errno, uint8(s.Signal)
	case profiles.ActionSigkill:
		return bpf.ActionSigkill, 0, 0
	case profiles.ActionSignal:
		return bpf.ActionSignal, 0, uint8(s.Signal)
	}
	return bpf.ActionPost, 0, 0
}

func maskOf(values []uint8, match, flag uint32) (uint32, uint32) {
	if len(values) == 0 {
		return 0, match
	}
	var m uint32
	for _, v := range values {
		m |= 1 << (v & 31)
	}
	return m, match | flag
}

func pickFlag(not bool, in, notIn uint32) uint32 {
	if not {
		return notIn
	}
	return in
}

// SetWorkload enforces profile id on a cgroup and everything below it.
// disabled[point] has bit i set for selectors that cannot match this
// workload (its namespaces rule them out).
func (e *Enforcer) SetWorkload(cgroupID uint64, profile uint32, mode profiles.Mode, disabled [profiles.NumPoints]uint32) error {
	w := bpf.FallbackWorkload{Profile: profile}
	if mode == profiles.ModeMonitor {
		w.Flags |= bpf.WorkloadMonitor
	}
	e.mu.Lock()
	w.Flags |= e.track[profile]
	e.mu.Unlock()
	copy(w.Disabled[:], disabled[:])
	if err := e.maps.Workloads.Put(cgroupID, &w); err != nil {
		return fmt.Errorf("write workload of cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// RemoveWorkload stops enforcing on a cgroup; a cgroup not present is fine.
func (e *Enforcer) RemoveWorkload(cgroupID uint64) error {
	if err := e.maps.Workloads.Delete(cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete workload of cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// WorkloadCgroups lists the cgroup IDs present in the workloads map.
func (e *Enforcer) WorkloadCgroups() ([]uint64, error) {
	var (
		ids []uint64
		key uint64
		val bpf.FallbackWorkload
	)
	it := e.maps.Workloads.Iterate()
	for it.Next(&key, &val) {
		ids = append(ids, key)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate workloads map: %w", err)
	}
	return ids, nil
}

// UnloadProfile deletes a profile's rules and then its sets. Workloads
// must have been moved off it first.
func (e *Enforcer) UnloadProfile(id uint32) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		key := bpf.FallbackRuleKey{Profile: id, Point: uint32(pt)}
		if err := e.maps.Rules.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("delete %s rules of profile %d: %w", pt, id, err))
		}
	}
	if w := e.sets[id]; w != nil {
		errs = append(errs, w.release())
		delete(e.sets, id)
	}
	delete(e.track, id)
	return errors.Join(errs...)
}
