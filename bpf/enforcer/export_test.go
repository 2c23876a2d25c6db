package enforcer

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/ocigate/ocigate/bpf"
)

// Read-only views of the enforcer's maps for the tests.

// needRoot skips tests that create BPF maps or programs.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("BPF maps need root")
	}
}

// testMaps creates the fallback object's maps alone, no programs.
func testMaps(t *testing.T) *bpf.FallbackMaps {
	t.Helper()
	needRoot(t)
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

// mapsOnlyEnforcer is an Enforcer with maps and no programs: enough for
// LoadProfile, SetWorkload and their bookkeeping.
func mapsOnlyEnforcer(t *testing.T) *Enforcer {
	t.Helper()
	return &Enforcer{maps: *testMaps(t)}
}

// countKeys counts the entries of a hash or LPM trie map.
func countKeys(t *testing.T, m *ebpf.Map) int {
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

// setCounts is how many keys each set map holds and how many port sets
// are handed out.
type setCounts struct {
	Addrs, Names, Bins, Paths, Ports int
}

func (e *Enforcer) setCounts(t *testing.T) setCounts {
	t.Helper()
	c := setCounts{
		Addrs: countKeys(t, e.maps.AddrSets), Names: countKeys(t, e.maps.NameSets),
		Bins: countKeys(t, e.maps.BinSets), Paths: countKeys(t, e.maps.PathPrefixes),
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, used := range e.ports.used {
		if used {
			c.Ports++
		}
	}
	return c
}

// procOf returns what exec tracking holds for tgid.
func (e *Enforcer) procOf(tgid uint32) (bpf.FallbackProc, bool) {
	var p bpf.FallbackProc
	err := e.maps.Procs.Lookup(tgid, &p)
	return p, err == nil
}

// procPath is the path in a procs entry.
func procPath(p bpf.FallbackProc) string { return bpf.CString(p.Path[:]) }

// rulesOf returns the rules of (profile, point), if any.
func (e *Enforcer) rulesOf(profile uint32, point uint32) (bpf.FallbackPointRules, bool) {
	var r bpf.FallbackPointRules
	err := e.maps.Rules.Lookup(bpf.FallbackRuleKey{Profile: profile, Point: point}, &r)
	return r, err == nil
}

// workloadOf returns the workloads entry of a cgroup.
func (e *Enforcer) workloadOf(cg uint64) (bpf.FallbackWorkload, bool) {
	var w bpf.FallbackWorkload
	err := e.maps.Workloads.Lookup(cg, &w)
	return w, err == nil
}
