package enforcer

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/profiles"
)

func fillOf(t *testing.T, e *Enforcer) map[string]MapFill {
	t.Helper()
	all, err := e.MapFill()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]MapFill{}
	for _, f := range all {
		out[f.Map] = f
	}
	return out
}

func TestMapFill(t *testing.T) {
	e := mapsOnlyEnforcer(t)
	empty := fillOf(t, e)
	for _, name := range []string{"workloads", "rules", "procs", "sock_owners", "addr_sets", "name_sets", "bin_sets", "path_prefixes", "port_sets"} {
		f, ok := empty[name]
		if !ok || f.Entries != 0 || f.MaxEntries <= 0 {
			t.Fatalf("%s on empty maps: %+v (listed %v)", name, f, ok)
		}
	}
	if empty["workloads"].MaxEntries != 16384 || empty["addr_sets"].MaxEntries != 262144 || empty["port_sets"].MaxEntries != bpf.MaxPortSets-1 {
		t.Fatalf("sizes %+v", empty)
	}
	for cg := uint64(1); cg <= 3; cg++ {
		if err := e.SetWorkload(cg, 1, profiles.ModeEnforce, [profiles.NumPoints]uint32{}); err != nil {
			t.Fatal(err)
		}
	}
	var cidrs []netip.Prefix
	for i := 0; i < 1000; i++ {
		cidrs = append(cidrs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	p := &profiles.Profile{Name: "fill", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointConnect] = []profiles.Selector{{Policy: "x", Call: "tcp_connect", Action: profiles.ActionOverride, Errno: 1,
		Daddr: profiles.AddrMatch{Prefixes: cidrs}, Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 4444, Hi: 4444}}}}}
	if err := e.LoadProfile(7, p); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := fillOf(t, e)
	took := time.Since(start)
	if got["workloads"].Entries != 3 || got["rules"].Entries != 1 || got["addr_sets"].Entries != 1000 || got["port_sets"].Entries != 1 {
		t.Fatalf("after 3 workloads and one profile: %+v", got)
	}
	if took > 2*time.Second {
		t.Fatalf("counting took %v", took)
	}
	if err := e.RemoveWorkload(2); err != nil {
		t.Fatal(err)
	}
	if got := fillOf(t, e); got["workloads"].Entries != 2 {
		t.Fatalf("after a removal: %+v", got["workloads"])
	}
}
