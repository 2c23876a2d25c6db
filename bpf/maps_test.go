package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/profiles"
)

func TestAddrKeyOf(t *testing.T) {
	tests := []struct {
		prefix  string
		set     uint32
		wantLen uint32
		want    string // the stored 16-byte address
	}{
		{"127.0.0.2/32", 3, 32 + 128, "::ffff:127.0.0.2"},
		{"10.1.2.3/8", 4, 32 + 104, "::ffff:10.0.0.0"},
		{"0.0.0.0/0", 1, 32 + 96, "::ffff:0.0.0.0"},
		{"192.168.77.200/20", 1, 32 + 116, "::ffff:192.168.64.0"},
		{"2001:db8:1:2:3:4:5:6/64", 5, 32 + 64, "2001:db8:1:2::"},
		{"2001:db8::1/128", 6, 32 + 128, "2001:db8::1"},
		{"::/0", 7, 32, "::"},
	}
	for _, tt := range tests {
		k := addrKeyOf(tt.set, netip.MustParsePrefix(tt.prefix))
		want := netip.MustParseAddr(tt.want).As16()
		if k.Prefixlen != tt.wantLen || k.Set != tt.set || k.Addr != want {
			t.Errorf("addrKeyOf(%d, %s) = {len %d set %d addr %v}, want {len %d set %d addr %v}",
				tt.set, tt.prefix, k.Prefixlen, k.Set, netip.AddrFrom16(k.Addr), tt.wantLen, tt.set, netip.AddrFrom16(want))
		}
	}
}

// The kernel looks addresses up with prefixlen 32+128 and the v4-mapped
// form; a key must match exactly the addresses in its prefix.
func TestAddrKeyCoversPrefix(t *testing.T) {
	k := addrKeyOf(1, netip.MustParsePrefix("10.0.0.0/8"))
	inPrefix := func(a netip.Addr) bool {
		b := a.As16()
		bits := int(k.Prefixlen) - 32
		for i := 0; i < bits; i++ {
			if (b[i/8]>>(7-i%8))&1 != (k.Addr[i/8]>>(7-i%8))&1 {
				return false
			}
		}
		return true
	}
	for addr, want := range map[string]bool{"10.255.1.2": true, "10.0.0.0": true, "11.0.0.1": false, "::ffff:10.1.1.1": true, "::a01:101": false} {
		if got := inPrefix(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s in 10.0.0.0/8 key: %v, want %v", addr, got, want)
		}
	}
}

// Selectors without value sets compile without touching the maps.
func TestCompileSelector(t *testing.T) {
	tests := []struct {
		name string
		sel  profiles.Selector
		want fallbackSelector
	}{
		{"empty post", profiles.Selector{Action: profiles.ActionPost}, fallbackSelector{Action: actionPost}},
		{"raw socket override, default errno",
			profiles.Selector{SockTypes: []uint8{unix.SOCK_RAW}, Action: profiles.ActionOverride},
			fallbackSelector{Match: matchType, Types: 1 << unix.SOCK_RAW, Action: actionDeny, Err: int32(unix.EPERM)}},
		{"families, types, states, explicit errno",
			profiles.Selector{Families: []uint8{unix.AF_INET, unix.AF_INET6}, SockTypes: []uint8{unix.SOCK_STREAM, unix.SOCK_DGRAM},
				States: []uint8{1, 10}, Action: profiles.ActionOverride, Errno: int(unix.ECONNREFUSED)},
			fallbackSelector{Match: matchFamily | matchType | matchState, Families: 1<<unix.AF_INET | 1<<unix.AF_INET6,
				Types: 1<<unix.SOCK_STREAM | 1<<unix.SOCK_DGRAM, States: 1<<1 | 1<<10, Action: actionDeny, Err: int32(unix.ECONNREFUSED)}},
		{"protocols over the four words",
			profiles.Selector{Protocols: []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_ICMPV6, unix.IPPROTO_SCTP, unix.IPPROTO_RAW, 0},
				Action: profiles.ActionPost},
			func() fallbackSelector {
				s := fallbackSelector{Match: matchProtocol, Action: actionPost}
				s.Protocols[0] = 1<<0 | 1<<6 | 1<<17 | 1<<58
				s.Protocols[2] = 1 << (132 - 128)
				s.Protocols[3] = 1 << 63
				return s
			}()},
		{"sigkill has no errno", profiles.Selector{StdioInet: true, Action: profiles.ActionSigkill, Errno: 13},
			fallbackSelector{Match: matchStdioInet, Action: actionSigkill}},
		{"signal", profiles.Selector{Action: profiles.ActionSignal, Signal: int(unix.SIGUSR1)},
			fallbackSelector{Action: actionSignal, Signal: uint8(unix.SIGUSR1)}},
		{"notify enforcer: deny and signal", profiles.Selector{Action: profiles.ActionNotifyEnforcer, Signal: int(unix.SIGKILL), Errno: int(unix.EACCES)},
			fallbackSelector{Action: actionDeny, Err: int32(unix.EACCES), Signal: uint8(unix.SIGKILL)}},
		{"notify enforcer without signal", profiles.Selector{Action: profiles.ActionNotifyEnforcer},
			fallbackSelector{Action: actionDeny, Err: int32(unix.EPERM)}},
		{"a signal on post or override is not sent", profiles.Selector{Action: profiles.ActionOverride, Signal: int(unix.SIGUSR2)},
			fallbackSelector{Action: actionDeny, Err: int32(unix.EPERM)}},
		{"post ignores signal and errno", profiles.Selector{Action: profiles.ActionPost, Signal: 10, Errno: 5},
			fallbackSelector{Action: actionPost}},
		{"group, nopost, monitor", profiles.Selector{Group: 5, NoPost: true, Monitor: true, Action: profiles.ActionOverride},
			fallbackSelector{Group: 5, Flags: selectorNoPost | selectorMonitor, Action: actionDeny, Err: int32(unix.EPERM)}},
		{"policy, call and namespaces are not the kernel's",
			profiles.Selector{Policy: "p", Call: "tcp_connect", Namespaces: []profiles.NamespaceMatch{{Namespace: "Pid", HostNS: true}},
				Action: profiles.ActionPost},
			fallbackSelector{Action: actionPost}},
	}
	for _, tt := range tests {
		got, err := compileSelector(&setWriter{}, &tt.sel)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func TestPickFlag(t *testing.T) {
	if pickFlag(false, 1, 2) != 1 || pickFlag(true, 1, 2) != 2 {
		t.Fatal("pickFlag")
	}
	if m, match := maskOf(nil, 7, matchFamily); m != 0 || match != 7 {
		t.Fatalf("empty maskOf: %d %d", m, match)
	}
}

// The kernel hashes exec'd paths with FNV-1a 64; PathHash must agree.
func TestPathHash(t *testing.T) {
	for in, want := range map[string]uint64{
		"":       0xcbf29ce484222325,
		"a":      0xaf63dc4c8601ec8c,
		"foobar": 0x85944171f73967e8,
	} {
		if got := PathHash(in); got != want {
			t.Errorf("PathHash(%q) = %#x, want %#x", in, got, want)
		}
	}
	// The kernel's loop, byte for byte.
	kernel := func(s string) uint64 {
		h := uint64(14695981039346656037)
		for i := 0; i < len(s) && i < profiles.MaxPathLen; i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		return h
	}
	for _, s := range []string{"/bin/busybox", "/usr/bin/python3.11", "/\xff\x80odd"} {
		if PathHash(s) != kernel(s) {
			t.Errorf("PathHash(%q) differs from the kernel's loop", s)
		}
	}
}

func TestPortAllocator(t *testing.T) {
	var a portAllocator
	seen := map[uint32]bool{}
	for i := 1; i < maxPortSets; i++ {
		idx, err := a.alloc()
		if err != nil {
			t.Fatalf("alloc %d: %v", i, err)
		}
		if idx == 0 || idx >= maxPortSets || seen[idx] {
			t.Fatalf("alloc %d returned %d (seen %v)", i, idx, seen[idx])
		}
		seen[idx] = true
	}
	if _, err := a.alloc(); err == nil || !strings.Contains(err.Error(), "port sets in use") {
		t.Fatalf("alloc beyond %d: %v", maxPortSets-1, err)
	}
	a.free(0)
	a.free(maxPortSets)
	a.free(1 << 31)
	if _, err := a.alloc(); err == nil {
		t.Fatal("free of an invalid index made room")
	}
	a.free(77)
	if idx, err := a.alloc(); err != nil || idx != 77 {
		t.Fatalf("after free(77): %d, %v", idx, err)
	}
}

// compileSet compiles one selector into fresh maps.
func compileSet(t *testing.T, e *Enforcer, s profiles.Selector) (fallbackSelector, *setWriter) {
	t.Helper()
	w := &setWriter{m: &e.maps, nextSet: &e.nextSet, ports: &e.ports}
	k, err := compileSelector(w, &s)
	if err != nil {
		t.Fatal(err)
	}
	return k, w
}

// addrIn looks a full address up in an address set, as the kernel does.
func addrIn(t *testing.T, e *Enforcer, set uint32, addr string) bool {
	t.Helper()
	k := fallbackAddrKey{Prefixlen: 32 + 128, Set: set, Addr: netip.MustParseAddr(addr).As16()}
	var v uint8
	return e.maps.AddrSets.Lookup(k, &v) == nil
}

// pathIn looks a path up in a Prefix (or reversed Postfix) set, as the
// kernel does.
func pathIn(t *testing.T, e *Enforcer, set uint32, path string, reverse bool) bool {
	t.Helper()
	b := []byte(path)
	if reverse {
		slices.Reverse(b)
	}
	k := fallbackPathKey{Prefixlen: 32 + 8*profiles.MaxPrefixLen, Set: set}
	for i := 0; i < len(b) && i < len(k.Path); i++ {
		k.Path[i] = int8(b[i])
	}
	var v uint8
	return e.maps.PathPrefixes.Lookup(k, &v) == nil
}

func portIn(t *testing.T, e *Enforcer, set uint32, port uint16) bool {
	t.Helper()
	var b fallbackPortBitmap
	if err := e.maps.PortSets.Lookup(set, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bits[port>>6]>>(port&63)&1 == 1
}

func TestCompileSelectorAddrSets(t *testing.T) {
	e := mapsOnlyEnforcer(t)
	pfx := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range s {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	k, _ := compileSet(t, e, profiles.Selector{Action: profiles.ActionPost,
		Daddr: profiles.AddrMatch{Prefixes: pfx("10.0.0.0/8", "127.0.0.2/32", "2001:db8::/32")},
		Saddr: profiles.AddrMatch{Not: true, Prefixes: pfx("0.0.0.0/0")}})
	if k.Match != matchDaddr|matchSaddrNot || k.DaddrSet == 0 || k.SaddrSet == 0 || k.DaddrSet == k.SaddrSet {
		t.Fatalf("selector %+v", k)
	}
	for addr, want := range map[string]bool{
		"::ffff:10.200.3.4": true, "::ffff:127.0.0.2": true, "::ffff:127.0.0.3": false, "::ffff:11.0.0.1": false,
		"2001:db8:ffff::1": true, "2001:db9::1": false, "::a00:1": false,
	} {
		if got := addrIn(t, e, k.DaddrSet, addr); got != want {
			t.Errorf("daddr set: %s in = %v, want %v", addr, got, want)
		}
	}
	// 0.0.0.0/0 covers every IPv4 address and no IPv6 one.
	if !addrIn(t, e, k.SaddrSet, "::ffff:1.2.3.4") || addrIn(t, e, k.SaddrSet, "2001:db8::1") {
		t.Error("saddr set 0.0.0.0/0")
	}
	// Sets do not see each other's entries.
	if addrIn(t, e, k.SaddrSet, "2001:db8::1") {
		t.Error("the saddr set holds the daddr set's IPv6 prefix")
	}
	if addrIn(t, e, k.DaddrSet+100, "::ffff:10.0.0.1") {
		t.Error("an address found in a set that does not exist")
	}
}

func TestCompileSelectorPortSets(t *testing.T) {
	e := mapsOnlyEnforcer(t)
	k, w := compileSet(t, e, profiles.Selector{Action: profiles.ActionOverride,
		Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 4000, Hi: 4010}, {Lo: 5555, Hi: 5555}}},
		Sport: profiles.PortMatch{Not: true, Ranges: []profiles.PortRange{{Lo: 0, Hi: 1023}, {Lo: 65535, Hi: 65535}}}})
	if k.Match != matchDport|matchSportNot || k.DportSet == 0 || k.SportSet == 0 || k.DportSet == k.SportSet {
		t.Fatalf("selector %+v", k)
	}
	if !slices.Equal(w.portIdx, []uint32{k.DportSet, k.SportSet}) {
		t.Fatalf("writer remembers ports %v", w.portIdx)
	}
	for port, want := range map[uint16]bool{3999: false, 4000: true, 4005: true, 4010: true, 4011: false, 5554: false, 5555: true, 5556: false, 0: false} {
		if got := portIn(t, e, k.DportSet, port); got != want {
			t.Errorf("dport %d in = %v, want %v", port, got, want)
		}
	}
	for port, want := range map[uint16]bool{0: true, 1023: true, 1024: false, 65534: false, 65535: true} {
		if got := portIn(t, e, k.SportSet, port); got != want {
			t.Errorf("sport %d in = %v, want %v", port, got, want)
		}
	}
	// A port set that is freed and handed out again starts empty.
	if err := w.release(); err != nil {
		t.Fatal(err)
	}
	k2, _ := compileSet(t, e, profiles.Selector{Action: profiles.ActionPost,
		Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 80, Hi: 80}}}})
	if k2.DportSet != k.DportSet {
		t.Fatalf("freed port set %d not reused (got %d)", k.DportSet, k2.DportSet)
	}
	if portIn(t, e, k2.DportSet, 4005) || !portIn(t, e, k2.DportSet, 80) {
		t.Error("a reused port set keeps the old ports")
	}
}

func TestCompileSelectorNamesAndBinaries(t *testing.T) {
	e := mapsOnlyEnforcer(t)
	long := strings.Repeat("n", profiles.MaxNameLen)
	k, w := compileSet(t, e, profiles.Selector{Action: profiles.ActionSigkill,
		Names: profiles.NameMatch{Not: true, Names: []string{"sh", "bash", long}},
		Binaries: []profiles.BinaryMatch{
			{Operator: profiles.BinaryIn, Values: []string{"/bin/busybox", "/usr/bin/nc"}},
			{Operator: profiles.BinaryNotPrefix, Values: []string{"/usr/", "/opt/x"}},
			{Operator: profiles.BinaryPostfix, Values: []string{"box", "/nc"}},
		}})
	if k.Match != matchNameNot|matchBin|matchBinPrefixNot|matchBinPostfix {
		t.Fatalf("match %#x", k.Match)
	}
	sets := []uint32{k.NameSet, k.BinSet, k.PrefixSet, k.PostfixSet}
	slices.Sort(sets)
	if sets = slices.Compact(sets); len(sets) != 4 || sets[0] == 0 {
		t.Fatalf("sets not distinct: %+v", k)
	}
	for _, n := range []string{"sh", "bash", long} {
		key := fallbackNameKey{Set: k.NameSet}
		putCString(key.Name[:], n)
		var v uint8
		if err := e.maps.NameSets.Lookup(key, &v); err != nil {
			t.Errorf("name %q not in its set: %v", n, err)
		}
	}
	for _, p := range []string{"/bin/busybox", "/usr/bin/nc"} {
		var v uint8
		if err := e.maps.BinSets.Lookup(fallbackBinKey{Set: k.BinSet, Hash: PathHash(p)}, &v); err != nil {
			t.Errorf("binary %q not in its set: %v", p, err)
		}
	}
	for path, want := range map[string]bool{"/usr/bin/busybox": true, "/usr": false, "/bin/busybox": false, "/opt/xyz": true, "/opt/": false} {
		if got := pathIn(t, e, k.PrefixSet, path, false); got != want {
			t.Errorf("prefix set: %q in = %v, want %v", path, got, want)
		}
	}
	for path, want := range map[string]bool{"/bin/busybox": true, "/usr/bin/nc": true, "/usr/bin/ncat": false, "box/x": false, "nc": false} {
		if got := pathIn(t, e, k.PostfixSet, path, true); got != want {
			t.Errorf("postfix set: %q in = %v, want %v", path, got, want)
		}
	}
	if len(w.nameKeys) != 3 || len(w.binKeys) != 2 || len(w.pathKeys) != 4 {
		t.Fatalf("writer remembers %d names, %d binaries, %d paths", len(w.nameKeys), len(w.binKeys), len(w.pathKeys))
	}
	// release deletes all of it and forgets it.
	if err := w.release(); err != nil {
		t.Fatal(err)
	}
	if c := e.setCounts(t); c != (setCounts{}) {
		t.Fatalf("after release: %+v", c)
	}
	if err := w.release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
}

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
	e := mapsOnlyEnforcer(t)
	p := setsProfile("web", "10.0.0.0/8", "192.0.2.1/32")
	p.Points[profiles.PointConnect][1].Group = 1
	if err := e.LoadProfile(3, p); err != nil {
		t.Fatal(err)
	}
	r, ok := e.rulesOf(3, uint32(profiles.PointConnect))
	if !ok || r.Count != 2 || r.Uses != r.Sel[0].Match|r.Sel[1].Match || r.Sel[1].Group != 1 ||
		r.Sel[0].Action != actionDeny || r.Sel[1].Match != matchName|matchBin|matchBinPrefix {
		t.Fatalf("connect rules %+v (present %v)", r, ok)
	}
	if r, ok := e.rulesOf(3, uint32(profiles.PointBind)); !ok || r.Count != 1 || r.Uses != matchSaddr|matchSport|matchBinPostfixNot {
		t.Fatalf("bind rules %+v (present %v)", r, ok)
	}
	for _, pt := range []profiles.Point{profiles.PointSendmsg, profiles.PointSockCreate, profiles.PointExec, profiles.PointListen, profiles.PointClose} {
		if _, ok := e.rulesOf(3, uint32(pt)); ok {
			t.Errorf("rules at %s, which has no selectors", pt)
		}
	}
	if c := e.setCounts(t); c != (setCounts{Addrs: 3, Names: 1, Bins: 1, Paths: 2, Ports: 2}) {
		t.Fatalf("sets %+v", c)
	}
	// Reloading with a point emptied removes its rules.
	p2 := setsProfile("web", "10.0.0.0/8")
	p2.Points[profiles.PointBind] = nil
	if err := e.LoadProfile(3, p2); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.rulesOf(3, uint32(profiles.PointBind)); ok {
		t.Fatal("bind rules left after the point was emptied")
	}
}

// Replacing a profile deletes the sets of the one it replaces, and
// unloading deletes the rest: nothing leaks.
func TestLoadProfileReplaceReleasesSets(t *testing.T) {
	e := mapsOnlyEnforcer(t)
	if err := e.LoadProfile(1, setsProfile("other", "198.51.100.0/24")); err != nil {
		t.Fatal(err)
	}
	base := e.setCounts(t)
	if err := e.LoadProfile(7, setsProfile("a", "10.0.0.0/8", "10.1.0.0/16", "192.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	first := e.setCounts(t)
	if first.Addrs != base.Addrs+4 || first.Ports != base.Ports+2 || first.Names != base.Names+1 || first.Bins != base.Bins+1 || first.Paths != base.Paths+2 {
		t.Fatalf("after the first load %+v (base %+v)", first, base)
	}
	r1, _ := e.rulesOf(7, uint32(profiles.PointConnect))
	for i := 0; i < 5; i++ {
		if err := e.LoadProfile(7, setsProfile("b", "172.16.0.0/12")); err != nil {
			t.Fatal(err)
		}
	}
	second := e.setCounts(t)
	if second != (setCounts{Addrs: base.Addrs + 2, Names: base.Names + 1, Bins: base.Bins + 1, Paths: base.Paths + 2, Ports: base.Ports + 2}) {
		t.Fatalf("after replacing: %+v (base %+v)", second, base)
	}
	// The new rules use new sets; the old sets are gone.
	r2, _ := e.rulesOf(7, uint32(profiles.PointConnect))
	if r2.Sel[0].DaddrSet == r1.Sel[0].DaddrSet || addrIn(t, e, r1.Sel[0].DaddrSet, "::ffff:10.0.0.1") ||
		!addrIn(t, e, r2.Sel[0].DaddrSet, "::ffff:172.16.0.1") {
		t.Fatalf("old set %d / new set %d", r1.Sel[0].DaddrSet, r2.Sel[0].DaddrSet)
	}
	// The other profile's sets are untouched.
	r0, _ := e.rulesOf(1, uint32(profiles.PointConnect))
	if !addrIn(t, e, r0.Sel[0].DaddrSet, "::ffff:198.51.100.7") {
		t.Fatal("another profile's set was deleted")
	}
	if err := e.UnloadProfile(7); err != nil {
		t.Fatal(err)
	}
	if c := e.setCounts(t); c != base {
		t.Fatalf("after unload: %+v, want %+v", c, base)
	}
	for pt := uint32(0); pt < uint32(profiles.NumPoints); pt++ {
		if _, ok := e.rulesOf(7, pt); ok {
			t.Fatalf("rules of point %d left after unload", pt)
		}
	}
	if err := e.UnloadProfile(7); err != nil {
		t.Fatalf("second unload: %v", err)
	}
	if err := e.UnloadProfile(1); err != nil {
		t.Fatal(err)
	}
	if c := e.setCounts(t); c != (setCounts{}) {
		t.Fatalf("everything unloaded: %+v", c)
	}
}

// A profile that cannot be compiled (here: no port set left) leaves
// nothing behind, and the profile it would replace stays.
func TestLoadProfileFailureLeavesNothing(t *testing.T) {
	e := mapsOnlyEnforcer(t)
	// Each of these takes 7 points x 16 selectors x 2 port sets.
	portHungry := func(name string) *profiles.Profile {
		p := &profiles.Profile{Name: name, Mode: profiles.ModeEnforce}
		for pt := range p.Points {
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
		if err := e.LoadProfile(id, portHungry(fmt.Sprint("p", id))); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.LoadProfile(3, setsProfile("small", "192.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	base := e.setCounts(t)
	if base.Ports != 2*7*16*2+2 {
		t.Fatalf("ports in use %d", base.Ports)
	}
	rules3, _ := e.rulesOf(3, uint32(profiles.PointConnect))
	// 511 port sets: a third hungry profile runs out half way, as new
	// profile and as replacement of profile 3.
	for _, id := range []uint32{4, 3} {
		err := e.LoadProfile(id, portHungry("p3"))
		if err == nil || !strings.Contains(err.Error(), "port sets in use") || !strings.Contains(err.Error(), `profile "p3"`) {
			t.Fatalf("load %d: %v", id, err)
		}
		if c := e.setCounts(t); c != base {
			t.Fatalf("failed load of %d left sets behind: %+v, want %+v", id, c, base)
		}
	}
	if _, ok := e.rulesOf(4, uint32(profiles.PointConnect)); ok {
		t.Fatal("failed load wrote rules")
	}
	if r, _ := e.rulesOf(3, uint32(profiles.PointConnect)); r != rules3 || !addrIn(t, e, r.Sel[0].DaddrSet, "::ffff:192.0.2.9") {
		t.Fatal("failed replacement changed the profile it would replace")
	}
	// Once room is made it loads.
	if err := e.UnloadProfile(1); err != nil {
		t.Fatal(err)
	}
	if err := e.LoadProfile(4, portHungry("p3")); err != nil {
		t.Fatal(err)
	}
	// An invalid profile writes nothing either.
	before := e.setCounts(t)
	bad := setsProfile("bad", "10.0.0.0/8")
	bad.Points[profiles.PointConnect][0].Errno = -1
	if err := e.LoadProfile(5, bad); err == nil {
		t.Fatal("invalid profile loaded")
	}
	if c := e.setCounts(t); c != before {
		t.Fatalf("invalid profile wrote sets: %+v", c)
	}
}

// When the rules map refuses a point's rules, LoadProfile fails after
// earlier points already use the new sets. UnloadProfile must still be
// able to delete everything of the profile.
func TestLoadProfileRulesMapFullDoesNotLeak(t *testing.T) {
	e := mapsOnlyEnforcer(t)
	max := int(e.maps.Rules.MaxEntries())
	all := make([]profiles.Point, profiles.NumPoints)
	for i := range all {
		all[i] = profiles.Point(i)
	}
	// Fill the rules map up to one free entry.
	id := uint32(100)
	for n := 0; n+int(profiles.NumPoints) <= max-1; n += int(profiles.NumPoints) {
		if err := e.LoadProfile(id, simpleProfile(fmt.Sprint("filler", id), all...)); err != nil {
			t.Fatalf("filler %d: %v", id, err)
		}
		id++
	}
	for n := countKeys(t, e.maps.Rules); n < max-1; n++ {
		if err := e.LoadProfile(id, simpleProfile(fmt.Sprint("filler", id), profiles.PointConnect)); err != nil {
			t.Fatal(err)
		}
		id++
	}
	if n := countKeys(t, e.maps.Rules); n != max-1 {
		t.Fatalf("rules map holds %d of %d", n, max)
	}
	base := e.setCounts(t)
	// connect takes the last entry, sendmsg does not fit.
	p := &profiles.Profile{Name: "late", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointConnect] = []profiles.Selector{{Action: profiles.ActionOverride,
		Daddr: profiles.AddrMatch{Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}}
	p.Points[profiles.PointSendmsg] = []profiles.Selector{{Action: profiles.ActionOverride,
		Daddr: profiles.AddrMatch{Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}}}
	if err := e.LoadProfile(9999, p); err == nil {
		t.Fatal("a profile loaded into a full rules map")
	}
	if err := e.UnloadProfile(9999); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.rulesOf(9999, uint32(profiles.PointConnect)); ok {
		t.Error("rules of the failed profile left after UnloadProfile")
	}
	if c := e.setCounts(t); c != base {
		t.Errorf("sets of the failed profile leak after UnloadProfile: %+v, want %+v", c, base)
	}
}

func TestSetWorkload(t *testing.T) {
	e := mapsOnlyEnforcer(t)
	var disabled [profiles.NumPoints]uint32
	disabled[profiles.PointConnect] = 0b101
	disabled[profiles.PointClose] = 1 << 15
	if err := e.SetWorkload(42, 3, profiles.ModeMonitor, disabled); err != nil {
		t.Fatal(err)
	}
	w, ok := e.workloadOf(42)
	want := fallbackWorkload{Profile: 3, Flags: workloadMonitor}
	want.Disabled[profiles.PointConnect], want.Disabled[profiles.PointClose] = 0b101, 1<<15
	if !ok || w != want {
		t.Fatalf("workload %+v, want %+v", w, want)
	}
	// Rewriting replaces every field.
	if err := e.SetWorkload(42, 4, profiles.ModeEnforce, [profiles.NumPoints]uint32{}); err != nil {
		t.Fatal(err)
	}
	if w, _ := e.workloadOf(42); w != (fallbackWorkload{Profile: 4}) {
		t.Fatalf("rewritten workload %+v", w)
	}
	if ids, err := e.WorkloadCgroups(); err != nil || !slices.Equal(ids, []uint64{42}) {
		t.Fatalf("WorkloadCgroups = %v, %v", ids, err)
	}
	for i := 0; i < 2; i++ {
		if err := e.RemoveWorkload(42); err != nil {
			t.Fatal(err)
		}
	}
	if ids, err := e.WorkloadCgroups(); err != nil || len(ids) != 0 {
		t.Fatalf("WorkloadCgroups after remove = %v, %v", ids, err)
	}
}

func putCString(dst []int8, s string) {
	for i := 0; i < len(s) && i < len(dst); i++ {
		dst[i] = int8(s[i])
	}
}

func encode(t *testing.T, k *fallbackEvent) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, k); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// binary.Read decodes the record packed; that is only right when the Go
// struct (like the C one) has no implicit padding.
func TestEventLayoutHasNoPadding(t *testing.T) {
	if n, m := binary.Size(fallbackEvent{}), int(unsafe.Sizeof(fallbackEvent{})); n != m {
		t.Fatalf("fallbackEvent: %d bytes encoded, %d in memory", n, m)
	}
}

func TestDecodeEventConnect4(t *testing.T) {
	k := fallbackEvent{KtimeNs: 123456789, CgroupId: 11, WorkloadCgroupId: 10, Pid: 4001, Tgid: 4000, Ppid: 3999, Uid: 1000,
		Profile: 2, Err: int32(unix.EPERM), Point: uint8(profiles.PointConnect), Action: uint8(profiles.ActionOverride),
		Selector: 1, Flags: eventEnforced | eventHasAddr, Enforcer: 1, Family: unix.AF_INET, SockType: unix.SOCK_STREAM,
		Protocol: unix.IPPROTO_TCP, Dport: 4444, Daddr: netip.MustParseAddr("::ffff:127.0.0.2").As16()}
	putCString(k.Comm[:], "nc")
	ev, err := decodeEvent(encode(t, &k))
	if err != nil {
		t.Fatal(err)
	}
	if ev.BootNs != 123456789 || ev.CgroupID != 11 || ev.WorkloadCgroupID != 10 || ev.Pid != 4001 || ev.Tgid != 4000 ||
		ev.Ppid != 3999 || ev.UID != 1000 || ev.Profile != 2 || ev.Errno != int32(unix.EPERM) {
		t.Errorf("ids: %+v", ev)
	}
	if ev.Point != profiles.PointConnect || ev.Action != profiles.ActionOverride || ev.Selector != 1 {
		t.Errorf("rule: point %v action %v selector %d", ev.Point, ev.Action, ev.Selector)
	}
	if !ev.Enforced || ev.Killed || ev.KillPending || !ev.HasAddr {
		t.Errorf("flags: %+v", ev)
	}
	if ev.Backend != BackendFallback || ev.Mechanism != "cgroup_sock_addr" || ev.Comm != "nc" || ev.Binary != "" {
		t.Errorf("backend %q mechanism %q comm %q binary %q", ev.Backend, ev.Mechanism, ev.Comm, ev.Binary)
	}
	if ev.Daddr != netip.MustParseAddr("127.0.0.2") || !ev.Daddr.Is4() || ev.Dport != 4444 ||
		ev.Family != unix.AF_INET || ev.SockType != unix.SOCK_STREAM || ev.Protocol != unix.IPPROTO_TCP {
		t.Errorf("address: %v port %d family %d type %d proto %d", ev.Daddr, ev.Dport, ev.Family, ev.SockType, ev.Protocol)
	}
}

func TestDecodeEventAddresses(t *testing.T) {
	tests := []struct {
		name   string
		family uint8
		flags  uint8
		addr   string
		want   netip.Addr
	}{
		{"v6 socket to a v4-mapped peer", unix.AF_INET6, eventHasAddr, "::ffff:10.1.2.3", netip.MustParseAddr("10.1.2.3")},
		{"v6 peer", unix.AF_INET6, eventHasAddr, "2001:db8::7", netip.MustParseAddr("2001:db8::7")},
		{"no address", unix.AF_INET, 0, "::ffff:10.1.2.3", netip.Addr{}},
	}
	for _, tt := range tests {
		k := fallbackEvent{Family: tt.family, Flags: tt.flags, Daddr: netip.MustParseAddr(tt.addr).As16()}
		ev, err := decodeEvent(encode(t, &k))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Daddr != tt.want || ev.HasAddr != (tt.flags&eventHasAddr != 0) {
			t.Errorf("%s: daddr %v (has %v), want %v", tt.name, ev.Daddr, ev.HasAddr, tt.want)
		}
	}
}

func TestDecodeEventExecKill(t *testing.T) {
	k := fallbackEvent{Point: uint8(profiles.PointExec), Action: uint8(profiles.ActionSigkill), Flags: eventEnforced | eventKillPending,
		Enforcer: 3, StdioInet: 0b101}
	putCString(k.Comm[:], "0123456789abcdef") // 16 bytes, no NUL
	putCString(k.Binary[:], "sh")
	ev, err := decodeEvent(encode(t, &k))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Point != profiles.PointExec || ev.Action != profiles.ActionSigkill || !ev.KillPending || ev.Killed || !ev.Enforced {
		t.Errorf("exec event %+v", ev)
	}
	if ev.Comm != "0123456789abcdef" || ev.Binary != "sh" || ev.StdioInet != 0b101 || ev.Mechanism != "tracepoint_sigkill" {
		t.Errorf("comm %q binary %q stdio %b mechanism %q", ev.Comm, ev.Binary, ev.StdioInet, ev.Mechanism)
	}
	if ev.HasAddr || ev.Daddr.IsValid() {
		t.Errorf("exec event has an address: %v", ev.Daddr)
	}
}

func TestDecodeEventEnforcers(t *testing.T) {
	for id, want := range map[uint8][2]string{
		1: {BackendFallback, "cgroup_sock_addr"}, 2: {BackendFallback, "cgroup_sock_create"},
		3: {BackendFallback, "tracepoint_sigkill"}, 4: {BackendLSM, "bpf_lsm"}, 5: {BackendFmodRet, "fmod_ret"}, 0: {"", ""},
	} {
		ev, err := decodeEvent(encode(t, &fallbackEvent{Enforcer: id}))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Backend != want[0] || ev.Mechanism != want[1] {
			t.Errorf("enforcer %d: %q/%q, want %q/%q", id, ev.Backend, ev.Mechanism, want[0], want[1])
		}
	}
}

func TestDecodeEventShortAndLong(t *testing.T) {
	full := encode(t, &fallbackEvent{Pid: 7})
	if _, err := decodeEvent(full[:10]); err == nil || !strings.Contains(err.Error(), "decode event (10 bytes)") {
		t.Fatalf("short record: %v", err)
	}
	if _, err := decodeEvent(nil); err == nil {
		t.Fatal("empty record decoded")
	}
	// Ring buffer samples may carry padding after the record.
	ev, err := decodeEvent(append(full, 0, 0, 0, 0, 0, 0, 0, 0))
	if err != nil || ev.Pid != 7 {
		t.Fatalf("padded record: %+v, %v", ev, err)
	}
}

func TestCString(t *testing.T) {
	mk := func(b ...byte) []int8 {
		out := make([]int8, len(b))
		for i, c := range b {
			out[i] = int8(c)
		}
		return out
	}
	tests := []struct {
		in   []int8
		want string
	}{
		{nil, ""},
		{mk(0, 'a'), ""},
		{mk('s', 'h', 0, 'x', 0), "sh"},
		{mk('a', 'b', 'c'), "abc"},        // no terminator
		{mk(0xc3, 0xa9, 0), "\u00e9"},     // bytes above 0x7f survive
		{mk('x', 0xff, 'y', 0), "x\xffy"}, // kept byte for byte
	}
	for _, tt := range tests {
		if got := cString(tt.in); got != tt.want {
			t.Errorf("cString(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeEventNewFields(t *testing.T) {
	k := fallbackEvent{Point: uint8(profiles.PointConnect), Action: actionSignal, Selector: 9, Group: 3, Signal: uint8(unix.SIGUSR1),
		Flags: eventSignalPend | eventHasAddr, Enforcer: 1, Family: unix.AF_INET, State: 7, Sport: 40000, Dport: 80,
		Saddr: netip.MustParseAddr("::ffff:10.0.0.5").As16(), Daddr: netip.MustParseAddr("::ffff:10.0.0.6").As16()}
	putCString(k.Path[:], "/usr/bin/curl")
	ev, err := decodeEvent(encode(t, &k))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Action != profiles.ActionSignal || !ev.SignalPending || ev.Signal != int(unix.SIGUSR1) || ev.Group != 3 || ev.Selector != 9 ||
		ev.Enforced || ev.Monitor || ev.State != 7 || ev.Path != "/usr/bin/curl" {
		t.Fatalf("event %+v", ev)
	}
	if ev.Saddr != netip.MustParseAddr("10.0.0.5") || ev.Sport != 40000 || ev.Daddr != netip.MustParseAddr("10.0.0.6") || ev.Dport != 80 {
		t.Fatalf("addresses %v:%d -> %v:%d", ev.Saddr, ev.Sport, ev.Daddr, ev.Dport)
	}

	// Monitor: what would have been denied.
	ev, err = decodeEvent(encode(t, &fallbackEvent{Action: actionDeny, Flags: eventMonitor}))
	if err != nil || !ev.Monitor || ev.Enforced || ev.SignalPending || ev.Action != profiles.ActionOverride {
		t.Fatalf("monitor event %+v, %v", ev, err)
	}
}

// bind reports the local address as saddr/sport and no destination.
func TestDecodeEventBind(t *testing.T) {
	k := fallbackEvent{Point: uint8(profiles.PointBind), Action: actionDeny, Flags: eventEnforced, Family: unix.AF_INET6,
		SockType: unix.SOCK_STREAM, Sport: 4444, Saddr: netip.MustParseAddr("::ffff:127.0.0.1").As16()}
	ev, err := decodeEvent(encode(t, &k))
	if err != nil {
		t.Fatal(err)
	}
	if ev.HasAddr || ev.Daddr.IsValid() || ev.Dport != 0 || ev.Saddr != netip.MustParseAddr("127.0.0.1") || ev.Sport != 4444 {
		t.Fatalf("bind event: daddr %v (has %v) saddr %v:%d", ev.Daddr, ev.HasAddr, ev.Saddr, ev.Sport)
	}
	// [::]:8080 on a v6 socket: the zero address is still an address.
	k = fallbackEvent{Point: uint8(profiles.PointBind), Family: unix.AF_INET6, Sport: 8080}
	if ev, _ := decodeEvent(encode(t, &k)); ev.Saddr != netip.IPv6Unspecified() || ev.Sport != 8080 {
		t.Fatalf("[::]:8080: %v:%d", ev.Saddr, ev.Sport)
	}
	// No source known: no saddr.
	if ev, _ := decodeEvent(encode(t, &fallbackEvent{Family: unix.AF_INET})); ev.Saddr.IsValid() {
		t.Fatalf("saddr %v without a source", ev.Saddr)
	}
}
