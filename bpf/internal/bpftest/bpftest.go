// Package bpftest holds the test helpers that the tests of several bpf
// packages share: root checks and the objects' maps, made without
// programs.
package bpftest

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/ocigate/ocigate/bpf"
)

// NeedRoot skips tests that create BPF maps or programs.
func NeedRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("BPF maps need root")
	}
}

// Maps creates the fallback object's maps alone, no programs, and
// closes them when the test ends.
func Maps(t *testing.T) *bpf.FallbackMaps {
	t.Helper()
	NeedRoot(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	spec, err := bpf.LoadFallback()
	if err != nil {
		t.Fatal(err)
	}
	var m bpf.FallbackMaps
	if err := spec.LoadAndAssign(&m, nil); err != nil {
		t.Fatalf("create maps: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return &m
}

// CountKeys counts the entries of a hash or LPM trie map.
func CountKeys(t *testing.T, m *ebpf.Map) int {
	t.Helper()
	var (
		n    int
		k, v []byte
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterate %v: %v", m, err)
	}
	return n
}

// Sets is how many keys each value set map holds and how many port sets
// are handed out.
type Sets struct {
	Addrs, Names, Bins, Paths, Ports int
}

// CountSets counts the keys of m's value set maps; ports is how many
// port sets the writer handed out.
func CountSets(t *testing.T, m *bpf.FallbackMaps, ports int) Sets {
	t.Helper()
	return Sets{
		Addrs: CountKeys(t, m.AddrSets), Names: CountKeys(t, m.NameSets),
		Bins: CountKeys(t, m.BinSets), Paths: CountKeys(t, m.PathPrefixes), Ports: ports,
	}
}

// RulesOf returns the rules of (profile, point) in m, if any.
func RulesOf(m *bpf.FallbackMaps, profile, point uint32) (bpf.FallbackPointRules, bool) {
	var r bpf.FallbackPointRules
	err := m.Rules.Lookup(bpf.FallbackRuleKey{Profile: profile, Point: point}, &r)
	return r, err == nil
}
