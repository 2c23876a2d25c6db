package enforcer

import (
	"testing"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/internal/bpftest"
)

// Read-only views of the enforcer's maps for the tests.

// mapsOnlyEnforcer is an Enforcer with maps and no programs: enough for
// LoadProfile, SetWorkload and their bookkeeping.
func mapsOnlyEnforcer(t *testing.T) *Enforcer {
	t.Helper()
	return &Enforcer{maps: *bpftest.Maps(t)}
}

// setCounts is how many keys each set map holds and how many port sets
// are handed out.
type setCounts struct {
	Addrs, Names, Bins, Paths, Ports int
}

func (e *Enforcer) setCounts(t *testing.T) setCounts {
	t.Helper()
	c := setCounts{
		Addrs: bpftest.CountKeys(t, e.maps.AddrSets), Names: bpftest.CountKeys(t, e.maps.NameSets),
		Bins: bpftest.CountKeys(t, e.maps.BinSets), Paths: bpftest.CountKeys(t, e.maps.PathPrefixes),
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
