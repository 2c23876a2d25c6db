package enforcer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/profiles"
)

// Inherited is what the pinned maps held when Load took them over: the
// profile ids whose rules are there and the registered workloads. The
// agent moves each workload onto its freshly loaded profile and then
// unloads the inherited ids.
type Inherited struct {
	Profiles  []uint32                     `json:"profiles,omitempty"`
	Workloads map[uint64]InheritedWorkload `json:"workloads,omitempty"`
}

// InheritedWorkload is one workloads map entry found pinned.
type InheritedWorkload struct {
	Profile  uint32
	Monitor  bool
	Disabled [profiles.NumPoints]uint32
}

// Inherited returns what the pinned maps held at Load (empty when
// nothing was taken over).
func (e *Enforcer) Inherited() Inherited {
	out := Inherited{Profiles: append([]uint32(nil), e.inherited.Profiles...), Workloads: map[uint64]InheritedWorkload{}}
	for k, v := range e.inherited.Workloads {
		out.Workloads[k] = v
	}
	return out
}

// inherit rebuilds the bookkeeping of pinned maps: which value sets and
// port sets each profile's rules use (so UnloadProfile frees them), the
// next free set id, the workload flags of each profile, and the
// workloads. Set entries no rule refers to (a profile write cut short)
// are deleted.
func (e *Enforcer) inherit() error {
	ids := map[uint32]bool{}
	owner := map[uint32]uint32{} // set id -> profile
	e.sets = map[uint32]*setWriter{}
	e.track = map[uint32]uint32{}
	writer := func(profile uint32) *setWriter {
		w := e.sets[profile]
		if w == nil {
			w = &setWriter{m: &e.maps, nextSet: &e.nextSet, ports: &e.ports}
			e.sets[profile] = w
		}
		return w
	}
	var (
		rk bpf.FallbackRuleKey
		rv bpf.FallbackPointRules
	)
	it := e.maps.Rules.Iterate()
	for it.Next(&rk, &rv) {
		ids[rk.Profile] = true
		w := writer(rk.Profile)
		for i := 0; i < int(rv.Count) && i < len(rv.Sel); i++ {
			s := &rv.Sel[i]
			for _, set := range []uint32{s.DaddrSet, s.SaddrSet, s.NameSet, s.BinSet, s.PrefixSet, s.PostfixSet} {
				if set != 0 {
					owner[set] = rk.Profile
					e.nextSet = max(e.nextSet, set)
				}
			}
			for _, idx := range []uint32{s.DportSet, s.SportSet} {
				if idx > 0 && idx < bpf.MaxPortSets && !e.ports.used[idx] {
					e.ports.used[idx] = true
					w.portIdx = append(w.portIdx, idx)
				}
			}
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read rules: %w", err)
	}
	var errs []error
	errs = append(errs,
		inheritKeys(e.maps.AddrSets, func(k *bpf.FallbackAddrKey) uint32 { return k.Set }, owner, &e.nextSet,
			func(p uint32, k bpf.FallbackAddrKey) { writer(p).addrKeys = append(writer(p).addrKeys, k) }),
		inheritKeys(e.maps.NameSets, func(k *bpf.FallbackNameKey) uint32 { return k.Set }, owner, &e.nextSet,
			func(p uint32, k bpf.FallbackNameKey) { writer(p).nameKeys = append(writer(p).nameKeys, k) }),
		inheritKeys(e.maps.BinSets, func(k *bpf.FallbackBinKey) uint32 { return k.Set }, owner, &e.nextSet,
			func(p uint32, k bpf.FallbackBinKey) { writer(p).binKeys = append(writer(p).binKeys, k) }),
		inheritKeys(e.maps.PathPrefixes, func(k *bpf.FallbackPathKey) uint32 { return k.Set }, owner, &e.nextSet,
			func(p uint32, k bpf.FallbackPathKey) { writer(p).pathKeys = append(writer(p).pathKeys, k) }),
	)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.inherited = Inherited{Workloads: map[uint64]InheritedWorkload{}}
	var (
		cg uint64
		wv bpf.FallbackWorkload
	)
	wit := e.maps.Workloads.Iterate()
	for wit.Next(&cg, &wv) {
		iw := InheritedWorkload{Profile: wv.Profile, Monitor: wv.Flags&bpf.WorkloadMonitor != 0}
		copy(iw.Disabled[:], wv.Disabled[:])
		e.inherited.Workloads[cg] = iw
		e.track[wv.Profile] |= wv.Flags & (bpf.WorkloadTrackSockets | bpf.WorkloadRelay)
		ids[wv.Profile] = true
	}
	if err := wit.Err(); err != nil {
		return fmt.Errorf("read workloads: %w", err)
	}
	for id := range ids {
		e.inherited.Profiles = append(e.inherited.Profiles, id)
	}
	e.log.Sugar().Infof("pinned maps hold %d profile(s) and %d workload(s)", len(e.inherited.Profiles), len(e.inherited.Workloads))
	return nil
}

// inheritKeys walks a set map: keys of a set some rule uses are handed to
// its profile, the others are deleted.
func inheritKeys[K any](m *ebpf.Map, setOf func(*K) uint32, owner map[uint32]uint32, next *uint32, add func(uint32, K)) error {
	var (
		k       K
		v       uint8
		garbage []K
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		set := setOf(&k)
		*next = max(*next, set)
		if p, ok := owner[set]; ok {
			add(p, k)
		} else {
			garbage = append(garbage, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read %v: %w", m, err)
	}
	for _, k := range garbage {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete unused set entry of %v: %w", m, err)
		}
	}
	return nil
}
