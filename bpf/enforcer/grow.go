package enforcer

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
)

// An upgrade often adds an enforcement point, and with it entries to the
// maps indexed by point (the counters). Refusing such a pinned map would
// stop the upgraded agent, and with it every container start, until an
// operator removed the pins; instead a pinned map that only grew is
// carried over: the new, larger map is made, every entry of the pinned
// one is copied into it, and it is pinned over the old one once the
// programs that use it are loaded. The old programs keep using the old
// map until their links get the new programs, so what they write in
// between (a few counter increments) is not carried.

// growable reports whether the pinned map m can be carried into a map of
// spec ms by copying: the same type, key, value and flags, room for at
// least as many entries, and a kind whose entries keep their meaning in
// a larger map (arrays by index, hashes by key).
func growable(ms *ebpf.MapSpec, m *ebpf.Map) bool {
	info, err := m.Info()
	if err != nil {
		return false
	}
	switch ms.Type {
	case ebpf.Array, ebpf.PerCPUArray, ebpf.Hash, ebpf.PerCPUHash, ebpf.LRUHash, ebpf.LRUCPUHash:
	default:
		return false
	}
	return info.Type == ms.Type && info.KeySize == ms.KeySize && info.ValueSize == ms.ValueSize &&
		info.Flags == ms.Flags && info.MaxEntries < ms.MaxEntries
}

// copyEntries copies every entry of from into to, which has the same
// key and value layout; it returns how many it copied.
func copyEntries(from, to *ebpf.Map) (int, error) {
	if !perCPU(from.Type()) {
		return copyAll(from, to, make([]byte, from.ValueSize()))
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return 0, err
	}
	val := make([][]byte, cpus) // one value per CPU
	for i := range val {
		val[i] = make([]byte, from.ValueSize())
	}
	return copyAll(from, to, val)
}

// copyAll copies every entry of from into to through val, a value of
// the maps' layout.
func copyAll[V any](from, to *ebpf.Map, val V) (int, error) {
	key := make([]byte, from.KeySize())
	n := 0
	it := from.Iterate()
	for it.Next(&key, &val) {
		if err := to.Put(key, val); err != nil {
			return n, fmt.Errorf("copy entry %x: %w", key, err)
		}
		n++
	}
	return n, it.Err()
}

// pinGrown pins m, the grown copy of the map pinned at path, over it:
// pinned beside and renamed over, so the path never goes missing.
func pinGrown(m *ebpf.Map, path string) error {
	tmp := path + "-next" // bpffs refuses names with a dot
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove leftover %s: %w", tmp, err)
	}
	if err := m.Pin(tmp); err != nil {
		return fmt.Errorf("pin %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = m.Unpin()
		return fmt.Errorf("rename %s over %s: %w", tmp, path, err)
	}
	return nil
}

// perCPU reports whether a map of type t holds one value per CPU.
func perCPU(t ebpf.MapType) bool {
	switch t {
	case ebpf.PerCPUArray, ebpf.PerCPUHash, ebpf.LRUCPUHash:
		return true
	}
	return false
}
