package rulemaps

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/profiles"
)

// setWriter writes the value sets of one compiled profile and remembers
// every key, so that a replaced profile's sets are deleted after the new
// rules are live.
type setWriter struct {
	m       *bpf.FallbackMaps
	nextSet *uint32
	ports   *portAllocator

	addrKeys []bpf.FallbackAddrKey
	nameKeys []bpf.FallbackNameKey
	binKeys  []bpf.FallbackBinKey
	pathKeys []bpf.FallbackPathKey
	portIdx  []uint32

	// addrSet is the set of each prefix list written, so that selectors
	// with equal lists share one set: the kernel looks a destination up
	// once per set and decision (daddr_in_set).
	addrSet map[string]uint32
}

func (w *setWriter) newSet() uint32 {
	*w.nextSet++
	return *w.nextSet
}

// addrKeyOf returns the LPM key of a prefix; IPv4 is stored v4-mapped.
func addrKeyOf(set uint32, p netip.Prefix) bpf.FallbackAddrKey {
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return bpf.FallbackAddrKey{Prefixlen: uint32(32 + bits), Set: set, Addr: p.Masked().Addr().As16()}
}

// addrs writes a set of prefixes, or returns the set of an equal list
// this writer wrote before.
func (w *setWriter) addrs(prefixes []netip.Prefix) (uint32, error) {
	list := fmt.Sprint(prefixes)
	if set, ok := w.addrSet[list]; ok {
		return set, nil
	}
	set := w.newSet()
	for _, p := range prefixes {
		k := addrKeyOf(set, p)
		if err := w.m.AddrSets.Put(k, uint8(1)); err != nil {
			return 0, fmt.Errorf("write address %v: %w", p, err)
		}
		w.addrKeys = append(w.addrKeys, k)
	}
	if w.addrSet == nil {
		w.addrSet = map[string]uint32{}
	}
	w.addrSet[list] = set
	return set, nil
}

func (w *setWriter) portSet(ranges []profiles.PortRange) (uint32, error) {
	idx, err := w.ports.alloc()
	if err != nil {
		return 0, err
	}
	var b bpf.FallbackPortBitmap
	for _, r := range ranges {
		for p := uint32(r.Lo); p <= uint32(r.Hi); p++ {
			b.Bits[p>>6] |= 1 << (p & 63)
		}
	}
	if err := w.m.PortSets.Put(idx, &b); err != nil {
		w.ports.free(idx)
		return 0, fmt.Errorf("write port set: %w", err)
	}
	w.portIdx = append(w.portIdx, idx)
	return idx, nil
}

func (w *setWriter) names(names []string) (uint32, error) {
	set := w.newSet()
	for _, n := range names {
		k := bpf.FallbackNameKey{Set: set}
		bpf.PutCString(k.Name[:], n)
		if err := w.m.NameSets.Put(k, uint8(1)); err != nil {
			return 0, fmt.Errorf("write name %q: %w", n, err)
		}
		w.nameKeys = append(w.nameKeys, k)
	}
	return set, nil
}

func (w *setWriter) binaries(paths []string) (uint32, error) {
	set := w.newSet()
	for _, p := range paths {
		k := bpf.FallbackBinKey{Set: set, Hash: bpf.PathHash(p)}
		if err := w.m.BinSets.Put(k, uint8(1)); err != nil {
			return 0, fmt.Errorf("write binary %q: %w", p, err)
		}
		w.binKeys = append(w.binKeys, k)
	}
	return set, nil
}

// pathPrefixes writes Prefix values, or reversed Postfix values.
func (w *setWriter) pathPrefixes(values []string, reverse bool) (uint32, error) {
	set := w.newSet()
	for _, v := range values {
		b := []byte(v)
		if reverse {
			for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
				b[i], b[j] = b[j], b[i]
			}
		}
		k := bpf.FallbackPathKey{Prefixlen: uint32(32 + 8*len(b)), Set: set}
		bpf.PutCString(k.Path[:], string(b))
		if err := w.m.PathPrefixes.Put(k, uint8(1)); err != nil {
			return 0, fmt.Errorf("write binary prefix %q: %w", v, err)
		}
		w.pathKeys = append(w.pathKeys, k)
	}
	return set, nil
}

// absorb takes over what another writer wrote, to release it later.
func (w *setWriter) absorb(o *setWriter) {
	w.addrKeys = append(w.addrKeys, o.addrKeys...)
	w.nameKeys = append(w.nameKeys, o.nameKeys...)
	w.binKeys = append(w.binKeys, o.binKeys...)
	w.pathKeys = append(w.pathKeys, o.pathKeys...)
	w.portIdx = append(w.portIdx, o.portIdx...)
}

// release deletes everything the writer wrote.
func (w *setWriter) release() error {
	var errs []error
	del := func(m *ebpf.Map, k any) {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	for _, k := range w.addrKeys {
		del(w.m.AddrSets, k)
	}
	for _, k := range w.nameKeys {
		del(w.m.NameSets, k)
	}
	for _, k := range w.binKeys {
		del(w.m.BinSets, k)
	}
	for _, k := range w.pathKeys {
		del(w.m.PathPrefixes, k)
	}
	for _, i := range w.portIdx {
		w.ports.free(i)
	}
	*w = setWriter{m: w.m, nextSet: w.nextSet, ports: w.ports}
	if len(errs) > 0 {
		return fmt.Errorf("delete replaced sets: %w", errors.Join(errs...))
	}
	return nil
}

// portAllocator hands out port_sets indexes; 0 is never used.
type portAllocator struct {
	used [bpf.MaxPortSets]bool
}

func (a *portAllocator) alloc() (uint32, error) {
	for i := 1; i < bpf.MaxPortSets; i++ {
		if !a.used[i] {
			a.used[i] = true
			return uint32(i), nil
		}
	}
	return 0, fmt.Errorf("all %d port sets in use", bpf.MaxPortSets-1)
}

func (a *portAllocator) free(i uint32) {
	if i > 0 && i < bpf.MaxPortSets {
		a.used[i] = false
	}
}
