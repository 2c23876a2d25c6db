package rulemaps

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/ocigate/ocigate/bpf"
)

// Adopted is what the rule maps held when a Writer adopted them.
type Adopted struct {
	// Profiles are the profile ids that rules or workloads refer to.
	Profiles []uint32
	// Workloads are the workloads map's entries, by cgroup id.
	Workloads map[uint64]bpf.FallbackWorkload
}

// Adopt takes over rule maps that an earlier writer filled (pinned maps
// an agent left): it rebuilds which value sets and port sets each
// profile's rules use (so UnloadProfile frees them), the next free set
// id and the workload flags of each profile, and returns the profiles
// and workloads it found. Set entries no rule refers to (a profile write
// cut short) are deleted.
func (w *Writer) Adopt() (Adopted, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := map[uint32]bool{}
	w.sets = map[uint32]*setWriter{}
	w.track = map[uint32]uint32{}
	owner, err := w.adoptRules(ids)
	if err != nil {
		return Adopted{}, err
	}
	if err := w.adoptSets(owner); err != nil {
		return Adopted{}, err
	}
	got := Adopted{Workloads: map[uint64]bpf.FallbackWorkload{}}
	var (
		cg uint64
		wv bpf.FallbackWorkload
	)
	it := w.m.Workloads.Iterate()
	for it.Next(&cg, &wv) {
		got.Workloads[cg] = wv
		w.track[wv.Profile] |= wv.Flags & (bpf.WorkloadTrackSockets | bpf.WorkloadRelay)
		ids[wv.Profile] = true
	}
	if err := it.Err(); err != nil {
		return Adopted{}, fmt.Errorf("read workloads: %w", err)
	}
	for id := range ids {
		got.Profiles = append(got.Profiles, id)
	}
	return got, nil
}

// setsOf is the set writer of profile's rules, made on first use.
func (w *Writer) setsOf(profile uint32) *setWriter {
	sw := w.sets[profile]
	if sw == nil {
		sw = w.newSetWriter()
		w.sets[profile] = sw
	}
	return sw
}

// adoptRules walks the rules: each profile id goes to ids, its port sets
// to its set writer, and the returned map says which profile uses each
// value set.
func (w *Writer) adoptRules(ids map[uint32]bool) (owner map[uint32]uint32, err error) {
	owner = map[uint32]uint32{} // set id -> profile
	var (
		rk bpf.FallbackRuleKey
		rv bpf.FallbackPointRules
	)
	it := w.m.Rules.Iterate()
	for it.Next(&rk, &rv) {
		ids[rk.Profile] = true
		sw := w.setsOf(rk.Profile)
		for i := 0; i < int(rv.Count) && i < len(rv.Sel); i++ {
			s := &rv.Sel[i]
			for _, set := range []uint32{s.DaddrSet, s.SaddrSet, s.NameSet, s.BinSet, s.PrefixSet, s.PostfixSet, s.PathSet, s.PathPrefixSet, s.PathPostfixSet} {
				if set != 0 {
					owner[set] = rk.Profile
					w.nextSet = max(w.nextSet, set)
				}
			}
			for _, idx := range []uint32{s.DportSet, s.SportSet} {
				if idx > 0 && idx < bpf.MaxPortSets && !w.ports.used[idx] {
					w.ports.used[idx] = true
					sw.portIdx = append(sw.portIdx, idx)
				}
			}
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	return owner, nil
}

// adoptSets hands every key of the value set maps to the profile whose
// rules use its set, and deletes the others.
func (w *Writer) adoptSets(owner map[uint32]uint32) error {
	return errors.Join(
		adoptKeys(w.m.AddrSets, func(k *bpf.FallbackAddrKey) uint32 { return k.Set }, owner, &w.nextSet,
			func(p uint32, k bpf.FallbackAddrKey) { w.setsOf(p).addrKeys = append(w.setsOf(p).addrKeys, k) }),
		adoptKeys(w.m.NameSets, func(k *bpf.FallbackNameKey) uint32 { return k.Set }, owner, &w.nextSet,
			func(p uint32, k bpf.FallbackNameKey) { w.setsOf(p).nameKeys = append(w.setsOf(p).nameKeys, k) }),
		adoptKeys(w.m.BinSets, func(k *bpf.FallbackBinKey) uint32 { return k.Set }, owner, &w.nextSet,
			func(p uint32, k bpf.FallbackBinKey) { w.setsOf(p).binKeys = append(w.setsOf(p).binKeys, k) }),
		adoptKeys(w.m.PathPrefixes, func(k *bpf.FallbackPathKey) uint32 { return k.Set }, owner, &w.nextSet,
			func(p uint32, k bpf.FallbackPathKey) { w.setsOf(p).pathKeys = append(w.setsOf(p).pathKeys, k) }),
	)
}

// adoptKeys walks a set map: keys of a set some rule uses are handed to
// its profile, the others are deleted.
func adoptKeys[K any](m *ebpf.Map, setOf func(*K) uint32, owner map[uint32]uint32, next *uint32, add func(uint32, K)) error {
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
