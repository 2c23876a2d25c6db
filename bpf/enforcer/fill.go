package enforcer

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/ocigate/ocigate/bpf"
)

// MapFill is how full one of the enforcer's maps is.
type MapFill struct {
	Map        string `json:"map"`
	Entries    int    `json:"entries"`
	MaxEntries int    `json:"max_entries"`
}

// MapFill counts the entries of the maps that fill up: workloads, rules,
// procs, sock_owners, the value sets, and the port sets handed out. It
// walks the keys of each map; while the kernel changes a map the count
// is approximate, and never above its size.
func (e *Enforcer) MapFill() ([]MapFill, error) {
	var out []MapFill
	for _, m := range []struct {
		name string
		m    *ebpf.Map
	}{
		{"workloads", e.maps.Workloads}, {"rules", e.maps.Rules}, {"procs", e.maps.Procs},
		{"sock_owners", e.maps.SockOwners}, {"addr_sets", e.maps.AddrSets}, {"name_sets", e.maps.NameSets},
		{"bin_sets", e.maps.BinSets}, {"path_prefixes", e.maps.PathPrefixes},
	} {
		n, err := countEntries(m.m)
		if err != nil {
			return out, fmt.Errorf("count entries of %s: %w", m.name, err)
		}
		out = append(out, MapFill{Map: m.name, Entries: n, MaxEntries: int(m.m.MaxEntries())})
	}
	// Index 0 is never handed out.
	out = append(out, MapFill{Map: "port_sets", Entries: e.rules.PortSetsUsed(), MaxEntries: bpf.MaxPortSets - 1})
	return out, nil
}

// countEntries walks a hash or LPM trie map's keys. A key deleted during
// the walk makes a hash map start over; the walk stops at the map's size.
func countEntries(m *ebpf.Map) (int, error) {
	limit := int(m.MaxEntries())
	var prev []byte
	n := 0
	for n < limit {
		var next []byte
		var err error
		if prev == nil {
			next, err = m.NextKeyBytes(nil)
		} else {
			next, err = m.NextKeyBytes(prev)
		}
		if err != nil {
			return n, err
		}
		if next == nil {
			break
		}
		n++
		prev = next
	}
	return n, nil
}
