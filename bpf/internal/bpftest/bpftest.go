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
