package rulemaps

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/internal/bpftest"
	"github.com/ocigate/ocigate/profiles"
)

// simpleProfile has one selector at each point given.
func simpleProfile(name string, points ...profiles.Point) *profiles.Profile {
	p := &profiles.Profile{Name: name, Mode: profiles.ModeEnforce}
	for _, pt := range points {
		p.Points[pt] = []profiles.Selector{{Action: profiles.ActionPost}}
	}
	return p
}

// setsProfile uses every kind of set at connect and bind.
func setsProfile(name string, addrs ...string) *profiles.Profile {
	p := &profiles.Profile{Name: name, Mode: profiles.ModeEnforce}
	var pfx []netip.Prefix
	for _, a := range addrs {
		pfx = append(pfx, netip.MustParsePrefix(a))
	}
	p.Points[profiles.PointConnect] = []profiles.Selector{
		{Action: profiles.ActionOverride, Daddr: profiles.AddrMatch{Prefixes: pfx},
			Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 1, Hi: 2}}}},
		{Action: profiles.ActionPost, Names: profiles.NameMatch{Names: []string{name}},
			Binaries: []profiles.BinaryMatch{{Operator: "In", Values: []string{"/x/" + name}}, {Operator: "Prefix", Values: []string{"/x/"}}}},
	}
	p.Points[profiles.PointBind] = []profiles.Selector{
		{Action: profiles.ActionOverride, Saddr: profiles.AddrMatch{Prefixes: pfx[:1]},
			Sport:    profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 4444, Hi: 4444}}},
			Binaries: []profiles.BinaryMatch{{Operator: "NotPostfix", Values: []string{name}}}},
	}
	return p
}

func TestLoadProfileWritesRules(t *testing.T) {
	rw := mapsOnlyWriter(t)
	p := setsProfile("web", "10.0.0.0/8", "192.0.2.1/32")
	p.Points[profiles.PointConnect][1].Group = 1
	if err := rw.LoadProfile(3, p); err != nil {
		t.Fatal(err)
	}
	r, ok := rw.rulesOf(3, uint32(profiles.PointConnect))
	if !ok || r.Count != 2 || r.Uses != r.Sel[0].Match|r.Sel[1].Match || r.Sel[1].Group != 1 ||
		r.Sel[0].Action != bpf.ActionDeny || r.Sel[1].Match != bpf.MatchName|bpf.MatchBin|bpf.MatchBinPrefix {
		t.Fatalf("connect rules %+v (present %v)", r, ok)
	}
	if r, ok := rw.rulesOf(3, uint32(profiles.PointBind)); !ok || r.Count != 1 || r.Uses != bpf.MatchSaddr|bpf.MatchSport|bpf.MatchBinPostfixNot {
		t.Fatalf("bind rules %+v (present %v)", r, ok)
	}
	for _, pt := range []profiles.Point{profiles.PointSendmsg, profiles.PointSockCreate, profiles.PointExec, profiles.PointListen, profiles.PointClose} {
		if _, ok := rw.rulesOf(3, uint32(pt)); ok {
			t.Errorf("rules at %s, which has no selectors", pt)
		}
	}
	if c := rw.setCounts(t); c != (bpftest.Sets{Addrs: 3, Names: 1, Bins: 1, Paths: 2, Ports: 2}) {
		t.Fatalf("sets %+v", c)
	}
	// Reloading with a point emptied removes its rules.
	p2 := setsProfile("web", "10.0.0.0/8")
	p2.Points[profiles.PointBind] = nil
	if err := rw.LoadProfile(3, p2); err != nil {
		t.Fatal(err)
	}
	if _, ok := rw.rulesOf(3, uint32(profiles.PointBind)); ok {
		t.Fatal("bind rules left after the point was emptied")
	}
}

// Replacing a profile deletes the sets of the one it replaces, and
// unloading deletes the rest: nothing leaks.
func TestLoadProfileReplaceReleasesSets(t *testing.T) {
	rw := mapsOnlyWriter(t)
	if err := rw.LoadProfile(1, setsProfile("other", "198.51.100.0/24")); err != nil {
		t.Fatal(err)
	}
	base := rw.setCounts(t)
	if err := rw.LoadProfile(7, setsProfile("a", "10.0.0.0/8", "10.1.0.0/16", "192.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	first := rw.setCounts(t)
	if first.Addrs != base.Addrs+4 || first.Ports != base.Ports+2 || first.Names != base.Names+1 || first.Bins != base.Bins+1 || first.Paths != base.Paths+2 {
		t.Fatalf("after the first load %+v (base %+v)", first, base)
	}
	r1, _ := rw.rulesOf(7, uint32(profiles.PointConnect))
	for i := 0; i < 5; i++ {
		if err := rw.LoadProfile(7, setsProfile("b", "172.16.0.0/12")); err != nil {
			t.Fatal(err)
		}
	}
	// One address key: connect's and bind's equal lists share a set.
	second := rw.setCounts(t)
	if second != (bpftest.Sets{Addrs: base.Addrs + 1, Names: base.Names + 1, Bins: base.Bins + 1, Paths: base.Paths + 2, Ports: base.Ports + 2}) {
		t.Fatalf("after replacing: %+v (base %+v)", second, base)
	}
	// The new rules use new sets; the old sets are gone.
	r2, _ := rw.rulesOf(7, uint32(profiles.PointConnect))
	if r2.Sel[0].DaddrSet == r1.Sel[0].DaddrSet || addrIn(t, rw, r1.Sel[0].DaddrSet, "::ffff:10.0.0.1") ||
		!addrIn(t, rw, r2.Sel[0].DaddrSet, "::ffff:172.16.0.1") {
		t.Fatalf("old set %d / new set %d", r1.Sel[0].DaddrSet, r2.Sel[0].DaddrSet)
	}
	// The other profile's sets are untouched.
	r0, _ := rw.rulesOf(1, uint32(profiles.PointConnect))
	if !addrIn(t, rw, r0.Sel[0].DaddrSet, "::ffff:198.51.100.7") {
		t.Fatal("another profile's set was deleted")
	}
	if err := rw.UnloadProfile(7); err != nil {
		t.Fatal(err)
	}
	if c := rw.setCounts(t); c != base {
		t.Fatalf("after unload: %+v, want %+v", c, base)
	}
	for pt := uint32(0); pt < uint32(profiles.NumPoints); pt++ {
		if _, ok := rw.rulesOf(7, pt); ok {
			t.Fatalf("rules of point %d left after unload", pt)
		}
	}
	if err := rw.UnloadProfile(7); err != nil {
		t.Fatalf("second unload: %v", err)
	}
	if err := rw.UnloadProfile(1); err != nil {
		t.Fatal(err)
	}
	if c := rw.setCounts(t); c != (bpftest.Sets{}) {
		t.Fatalf("everything unloaded: %+v", c)
	}
}

// A profile that cannot be compiled (here: no port set left) leaves
// nothing behind, and the profile it would replace stays.
func TestLoadProfileFailureLeavesNothing(t *testing.T) {
	rw := mapsOnlyWriter(t)
	// Each of these takes 7 points x 16 selectors x 2 port sets.
	portHungry := func(name string) *profiles.Profile {
		p := &profiles.Profile{Name: name, Mode: profiles.ModeEnforce}
		for pt := range profiles.Point(7) {
			for i := 0; i < profiles.MaxSelectors; i++ {
				p.Points[pt] = append(p.Points[pt], profiles.Selector{Action: profiles.ActionPost,
					Daddr: profiles.AddrMatch{Prefixes: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", pt, i))}},
					Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: uint16(i), Hi: uint16(i)}}},
					Sport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 1, Hi: 2}}}})
			}
		}
		return p
	}
	for id := uint32(1); id <= 2; id++ {
		if err := rw.LoadProfile(id, portHungry(fmt.Sprint("p", id))); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.LoadProfile(3, setsProfile("small", "192.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	base := rw.setCounts(t)
	if base.Ports != 2*7*16*2+2 {
		t.Fatalf("ports in use %d", base.Ports)
	}
	rules3, _ := rw.rulesOf(3, uint32(profiles.PointConnect))
	// 511 port sets: a third hungry profile runs out half way, as new
	// profile and as replacement of profile 3.
	for _, id := range []uint32{4, 3} {
		err := rw.LoadProfile(id, portHungry("p3"))
		if err == nil || !strings.Contains(err.Error(), "port sets in use") || !strings.Contains(err.Error(), `profile "p3"`) {
			t.Fatalf("load %d: %v", id, err)
		}
		if c := rw.setCounts(t); c != base {
			t.Fatalf("failed load of %d left sets behind: %+v, want %+v", id, c, base)
		}
	}
	if _, ok := rw.rulesOf(4, uint32(profiles.PointConnect)); ok {
		t.Fatal("failed load wrote rules")
	}
	if r, _ := rw.rulesOf(3, uint32(profiles.PointConnect)); r != rules3 || !addrIn(t, rw, r.Sel[0].DaddrSet, "::ffff:192.0.2.9") {
		t.Fatal("failed replacement changed the profile it would replace")
	}
	// Once room is made it loads.
	if err := rw.UnloadProfile(1); err != nil {
		t.Fatal(err)
	}
	if err := rw.LoadProfile(4, portHungry("p3")); err != nil {
		t.Fatal(err)
	}
	// An invalid profile writes nothing either.
	before := rw.setCounts(t)
	bad := setsProfile("bad", "10.0.0.0/8")
	bad.Points[profiles.PointConnect][0].Errno = -1
	if err := rw.LoadProfile(5, bad); err == nil {
		t.Fatal("invalid profile loaded")
	}
	if c := rw.setCounts(t); c != before {
		t.Fatalf("invalid profile wrote sets: %+v", c)
	}
}

// When the rules map refuses a point's rules, LoadProfile fails after
// earlier points already use the new sets. UnloadProfile must still be
// able to delete everything of the profile.
func TestLoadProfileRulesMapFullDoesNotLeak(t *testing.T) {
	rw := mapsOnlyWriter(t)
	max := int(rw.m.Rules.MaxEntries())
	all := make([]profiles.Point, profiles.NumPoints)
	for i := range all {
		all[i] = profiles.Point(i)
	}
	// Fill the rules map up to one free entry.
	id := uint32(100)
	for n := 0; n+int(profiles.NumPoints) <= max-1; n += int(profiles.NumPoints) {
		if err := rw.LoadProfile(id, simpleProfile(fmt.Sprint("filler", id), all...)); err != nil {
			t.Fatalf("filler %d: %v", id, err)
		}
		id++
	}
	for n := bpftest.CountKeys(t, rw.m.Rules); n < max-1; n++ {
		if err := rw.LoadProfile(id, simpleProfile(fmt.Sprint("filler", id), profiles.PointConnect)); err != nil {
			t.Fatal(err)
		}
		id++
	}
	if n := bpftest.CountKeys(t, rw.m.Rules); n != max-1 {
		t.Fatalf("rules map holds %d of %d", n, max)
	}
	base := rw.setCounts(t)
	// connect takes the last entry, sendmsg does not fit.
	p := &profiles.Profile{Name: "late", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointConnect] = []profiles.Selector{{Action: profiles.ActionOverride,
		Daddr: profiles.AddrMatch{Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}}
	p.Points[profiles.PointSendmsg] = []profiles.Selector{{Action: profiles.ActionOverride,
		Daddr: profiles.AddrMatch{Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}}}
	if err := rw.LoadProfile(9999, p); err == nil {
		t.Fatal("a profile loaded into a full rules map")
	}
	if err := rw.UnloadProfile(9999); err != nil {
		t.Fatal(err)
	}
	if _, ok := rw.rulesOf(9999, uint32(profiles.PointConnect)); ok {
		t.Error("rules of the failed profile left after UnloadProfile")
	}
	if c := rw.setCounts(t); c != base {
		t.Errorf("sets of the failed profile leak after UnloadProfile: %+v, want %+v", c, base)
	}
}

func TestSetWorkload(t *testing.T) {
	rw := mapsOnlyWriter(t)
	var disabled [profiles.NumPoints]uint32
	disabled[profiles.PointConnect] = 0b101
	disabled[profiles.PointClose] = 1 << 15
	if err := rw.SetWorkload(42, 3, profiles.ModeMonitor, disabled); err != nil {
		t.Fatal(err)
	}
	w, ok := rw.workloadOf(42)
	want := bpf.FallbackWorkload{Profile: 3, Flags: bpf.WorkloadMonitor}
	want.Disabled[profiles.PointConnect], want.Disabled[profiles.PointClose] = 0b101, 1<<15
	if !ok || w != want {
		t.Fatalf("workload %+v, want %+v", w, want)
	}
	// Rewriting replaces every field.
	if err := rw.SetWorkload(42, 4, profiles.ModeEnforce, [profiles.NumPoints]uint32{}); err != nil {
		t.Fatal(err)
	}
	if w, _ := rw.workloadOf(42); w != (bpf.FallbackWorkload{Profile: 4}) {
		t.Fatalf("rewritten workload %+v", w)
	}
	if ids, err := rw.WorkloadCgroups(); err != nil || !slices.Equal(ids, []uint64{42}) {
		t.Fatalf("WorkloadCgroups = %v, %v", ids, err)
	}
	for i := 0; i < 2; i++ {
		if err := rw.RemoveWorkload(42); err != nil {
			t.Fatal(err)
		}
	}
	if ids, err := rw.WorkloadCgroups(); err != nil || len(ids) != 0 {
		t.Fatalf("WorkloadCgroups after remove = %v, %v", ids, err)
	}
}

// Selectors of one profile with equal address lists share one set (the
// kernel then looks a destination up once per decision); other lists,
// and other profiles, get their own, and unloading deletes each key once.
func TestEqualAddressListsShareASet(t *testing.T) {
	rw := mapsOnlyWriter(t)
	private := profiles.AddrMatch{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.0/8")}}
	other := profiles.AddrMatch{Prefixes: private.Prefixes[:1]}
	p := &profiles.Profile{Name: "share", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointConnect] = []profiles.Selector{
		{Action: profiles.ActionPost, Daddr: private},
		{Action: profiles.ActionPost, Group: 1, Daddr: other},
		{Action: profiles.ActionPost, Group: 2, Daddr: profiles.AddrMatch{Prefixes: private.Prefixes, Not: true}},
	}
	p.Points[profiles.PointSendmsg] = []profiles.Selector{{Action: profiles.ActionPost, Daddr: private}}
	for id := uint32(1); id <= 2; id++ {
		if err := rw.LoadProfile(id, p); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := rw.rulesOf(1, uint32(profiles.PointConnect))
	s, _ := rw.rulesOf(1, uint32(profiles.PointSendmsg))
	if c.Sel[0].DaddrSet == 0 || c.Sel[2].DaddrSet != c.Sel[0].DaddrSet || s.Sel[0].DaddrSet != c.Sel[0].DaddrSet ||
		c.Sel[1].DaddrSet == c.Sel[0].DaddrSet {
		t.Fatalf("sets: connect %d %d %d, sendmsg %d", c.Sel[0].DaddrSet, c.Sel[1].DaddrSet, c.Sel[2].DaddrSet, s.Sel[0].DaddrSet)
	}
	if c2, _ := rw.rulesOf(2, uint32(profiles.PointConnect)); c2.Sel[0].DaddrSet == c.Sel[0].DaddrSet {
		t.Fatalf("profiles 1 and 2 share set %d", c.Sel[0].DaddrSet)
	}
	if n := rw.setCounts(t).Addrs; n != 2*3 {
		t.Fatalf("%d address keys, want 3 per profile", n)
	}
	for id := uint32(1); id <= 2; id++ {
		if err := rw.UnloadProfile(id); err != nil {
			t.Fatal(err)
		}
	}
	if c := rw.setCounts(t); c != (bpftest.Sets{}) {
		t.Fatalf("after unload: %+v", c)
	}
}
