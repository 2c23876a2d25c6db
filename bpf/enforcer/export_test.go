package enforcer

import (
	"testing"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/internal/bpftest"
	"github.com/ocigate/ocigate/bpf/rulemaps"
)

// Read-only views of the enforcer's maps for the tests.

// mapsOnlyEnforcer is an Enforcer with maps and no programs: enough for
// LoadProfile, SetWorkload and the map statistics.
func mapsOnlyEnforcer(t *testing.T) *Enforcer {
	t.Helper()
	e := &Enforcer{maps: *bpftest.Maps(t)}
	e.rules = rulemaps.New(&e.maps)
	return e
}

// setCounts is how many keys each set map holds and how many port sets
// are handed out.
func (e *Enforcer) setCounts(t *testing.T) bpftest.Sets {
	t.Helper()
	return bpftest.CountSets(t, &e.maps, e.rules.PortSetsUsed())
}

// procOf returns what exec tracking holds for tgid.
func (e *Enforcer) procOf(tgid uint32) (bpf.FallbackProc, bool) {
	var p bpf.FallbackProc
	err := e.maps.Procs.Lookup(tgid, &p)
	return p, err == nil
}

// procPath is the path in a procs entry.
func procPath(p bpf.FallbackProc) string { return bpf.CString(p.Path[:]) }
