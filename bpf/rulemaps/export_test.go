package rulemaps

import (
	"testing"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/internal/bpftest"
)

// Read-only views of the writer's maps for the tests.

// mapsOnlyWriter is a Writer of fresh maps, with no programs loaded.
func mapsOnlyWriter(t *testing.T) *Writer {
	t.Helper()
	return New(bpftest.Maps(t))
}

// setCounts is how many keys each set map holds and how many port sets
// are handed out.
func (w *Writer) setCounts(t *testing.T) bpftest.Sets {
	t.Helper()
	return bpftest.CountSets(t, w.m, w.PortSetsUsed())
}

// rulesOf returns the rules of (profile, point), if any.
func (w *Writer) rulesOf(profile uint32, point uint32) (bpf.FallbackPointRules, bool) {
	return bpftest.RulesOf(w.m, profile, point)
}

// workloadOf returns the workloads entry of a cgroup.
func (w *Writer) workloadOf(cg uint64) (bpf.FallbackWorkload, bool) {
	var wl bpf.FallbackWorkload
	err := w.m.Workloads.Lookup(cg, &wl)
	return wl, err == nil
}
