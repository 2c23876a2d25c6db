package rulemaps

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/internal/bpftest"
	"github.com/ocigate/ocigate/profiles"
)

// Selectors without value sets compile without touching the maps.
func TestCompileSelector(t *testing.T) {
	tests := []struct {
		name string
		sel  profiles.Selector
		want bpf.FallbackSelector
	}{
		{"empty post", profiles.Selector{Action: profiles.ActionPost}, bpf.FallbackSelector{Action: bpf.ActionPost}},
		{"raw socket override, default errno",
			profiles.Selector{SockTypes: []uint8{unix.SOCK_RAW}, Action: profiles.ActionOverride},
			bpf.FallbackSelector{Match: bpf.MatchType, Types: 1 << unix.SOCK_RAW, Action: bpf.ActionDeny, Err: int32(unix.EPERM)}},
		{"families, types, states, explicit errno",
			profiles.Selector{Families: []uint8{unix.AF_INET, unix.AF_INET6}, SockTypes: []uint8{unix.SOCK_STREAM, unix.SOCK_DGRAM},
				States: []uint8{1, 10}, Action: profiles.ActionOverride, Errno: int(unix.ECONNREFUSED)},
			bpf.FallbackSelector{Match: bpf.MatchFamily | bpf.MatchType | bpf.MatchState, Families: 1<<unix.AF_INET | 1<<unix.AF_INET6,
				Types: 1<<unix.SOCK_STREAM | 1<<unix.SOCK_DGRAM, States: 1<<1 | 1<<10, Action: bpf.ActionDeny, Err: int32(unix.ECONNREFUSED)}},
		{"protocols over the four words",
			profiles.Selector{Protocols: []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_ICMPV6, unix.IPPROTO_SCTP, unix.IPPROTO_RAW, 0},
				Action: profiles.ActionPost},
			func() bpf.FallbackSelector {
				s := bpf.FallbackSelector{Match: bpf.MatchProtocol, Action: bpf.ActionPost}
				s.Protocols[0] = 1<<0 | 1<<6 | 1<<17 | 1<<58
				s.Protocols[2] = 1 << (132 - 128)
				s.Protocols[3] = 1 << 63
				return s
			}()},
		{"sigkill has no errno", profiles.Selector{StdioInet: true, Action: profiles.ActionSigkill, Errno: 13},
			bpf.FallbackSelector{Match: bpf.MatchStdioInet, Action: bpf.ActionSigkill}},
		{"signal", profiles.Selector{Action: profiles.ActionSignal, Signal: int(unix.SIGUSR1)},
			bpf.FallbackSelector{Action: bpf.ActionSignal, Signal: uint8(unix.SIGUSR1)}},
		{"notify enforcer: deny and signal", profiles.Selector{Action: profiles.ActionNotifyEnforcer, Signal: int(unix.SIGKILL), Errno: int(unix.EACCES)},
			bpf.FallbackSelector{Action: bpf.ActionDeny, Err: int32(unix.EACCES), Signal: uint8(unix.SIGKILL)}},
		{"notify enforcer without signal", profiles.Selector{Action: profiles.ActionNotifyEnforcer},
			bpf.FallbackSelector{Action: bpf.ActionDeny, Err: int32(unix.EPERM)}},
		{"a signal on post or override is not sent", profiles.Selector{Action: profiles.ActionOverride, Signal: int(unix.SIGUSR2)},
			bpf.FallbackSelector{Action: bpf.ActionDeny, Err: int32(unix.EPERM)}},
		{"post ignores signal and errno", profiles.Selector{Action: profiles.ActionPost, Signal: 10, Errno: 5},
			bpf.FallbackSelector{Action: bpf.ActionPost}},
		{"group, nopost, monitor", profiles.Selector{Group: 5, NoPost: true, Monitor: true, Action: profiles.ActionOverride},
			bpf.FallbackSelector{Group: 5, Flags: bpf.SelectorNoPost | bpf.SelectorMonitor, Action: bpf.ActionDeny, Err: int32(unix.EPERM)}},
		{"policy, call and namespaces are not the kernel's",
			profiles.Selector{Policy: "p", Call: "tcp_connect", Namespaces: []profiles.NamespaceMatch{{Namespace: "Pid", HostNS: true}},
				Action: profiles.ActionPost},
			bpf.FallbackSelector{Action: bpf.ActionPost}},
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
	if m, match := maskOf(nil, 7, bpf.MatchFamily); m != 0 || match != 7 {
		t.Fatalf("empty maskOf: %d %d", m, match)
	}
}

// compileSet compiles one selector into fresh maps.
func compileSet(t *testing.T, rw *Writer, s profiles.Selector) (bpf.FallbackSelector, *setWriter) {
	t.Helper()
	w := rw.newSetWriter()
	k, err := compileSelector(w, &s)
	if err != nil {
		t.Fatal(err)
	}
	return k, w
}

// addrIn looks a full address up in an address set, as the kernel does.
func addrIn(t *testing.T, rw *Writer, set uint32, addr string) bool {
	t.Helper()
	k := bpf.FallbackAddrKey{Prefixlen: 32 + 128, Set: set, Addr: netip.MustParseAddr(addr).As16()}
	var v uint8
	return rw.m.AddrSets.Lookup(k, &v) == nil
}

// pathIn looks a path up in a Prefix (or reversed Postfix) set, as the
// kernel does.
func pathIn(t *testing.T, rw *Writer, set uint32, path string, reverse bool) bool {
	t.Helper()
	b := []byte(path)
	if reverse {
		slices.Reverse(b)
	}
	k := bpf.FallbackPathKey{Prefixlen: 32 + 8*profiles.MaxPrefixLen, Set: set}
	for i := 0; i < len(b) && i < len(k.Path); i++ {
		k.Path[i] = int8(b[i])
	}
	var v uint8
	return rw.m.PathPrefixes.Lookup(k, &v) == nil
}

func portIn(t *testing.T, rw *Writer, set uint32, port uint16) bool {
	t.Helper()
	var b bpf.FallbackPortBitmap
	if err := rw.m.PortSets.Lookup(set, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bits[port>>6]>>(port&63)&1 == 1
}

func TestCompileSelectorAddrSets(t *testing.T) {
	rw := mapsOnlyWriter(t)
	pfx := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range s {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	k, _ := compileSet(t, rw, profiles.Selector{Action: profiles.ActionPost,
		Daddr: profiles.AddrMatch{Prefixes: pfx("10.0.0.0/8", "127.0.0.2/32", "2001:db8::/32")},
		Saddr: profiles.AddrMatch{Not: true, Prefixes: pfx("0.0.0.0/0")}})
	if k.Match != bpf.MatchDaddr|bpf.MatchSaddrNot || k.DaddrSet == 0 || k.SaddrSet == 0 || k.DaddrSet == k.SaddrSet {
		t.Fatalf("selector %+v", k)
	}
	for addr, want := range map[string]bool{
		"::ffff:10.200.3.4": true, "::ffff:127.0.0.2": true, "::ffff:127.0.0.3": false, "::ffff:11.0.0.1": false,
		"2001:db8:ffff::1": true, "2001:db9::1": false, "::a00:1": false,
	} {
		if got := addrIn(t, rw, k.DaddrSet, addr); got != want {
			t.Errorf("daddr set: %s in = %v, want %v", addr, got, want)
		}
	}
	// 0.0.0.0/0 covers every IPv4 address and no IPv6 one.
	if !addrIn(t, rw, k.SaddrSet, "::ffff:1.2.3.4") || addrIn(t, rw, k.SaddrSet, "2001:db8::1") {
		t.Error("saddr set 0.0.0.0/0")
	}
	// Sets do not see each other's entries.
	if addrIn(t, rw, k.SaddrSet, "2001:db8::1") {
		t.Error("the saddr set holds the daddr set's IPv6 prefix")
	}
	if addrIn(t, rw, k.DaddrSet+100, "::ffff:10.0.0.1") {
		t.Error("an address found in a set that does not exist")
	}
}

func TestCompileSelectorPortSets(t *testing.T) {
	rw := mapsOnlyWriter(t)
	k, w := compileSet(t, rw, profiles.Selector{Action: profiles.ActionOverride,
		Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 4000, Hi: 4010}, {Lo: 5555, Hi: 5555}}},
		Sport: profiles.PortMatch{Not: true, Ranges: []profiles.PortRange{{Lo: 0, Hi: 1023}, {Lo: 65535, Hi: 65535}}}})
	if k.Match != bpf.MatchDport|bpf.MatchSportNot || k.DportSet == 0 || k.SportSet == 0 || k.DportSet == k.SportSet {
		t.Fatalf("selector %+v", k)
	}
	if !slices.Equal(w.portIdx, []uint32{k.DportSet, k.SportSet}) {
		t.Fatalf("writer remembers ports %v", w.portIdx)
	}
	for port, want := range map[uint16]bool{3999: false, 4000: true, 4005: true, 4010: true, 4011: false, 5554: false, 5555: true, 5556: false, 0: false} {
		if got := portIn(t, rw, k.DportSet, port); got != want {
			t.Errorf("dport %d in = %v, want %v", port, got, want)
		}
	}
	for port, want := range map[uint16]bool{0: true, 1023: true, 1024: false, 65534: false, 65535: true} {
		if got := portIn(t, rw, k.SportSet, port); got != want {
			t.Errorf("sport %d in = %v, want %v", port, got, want)
		}
	}
	// A port set that is freed and handed out again starts empty.
	if err := w.release(); err != nil {
		t.Fatal(err)
	}
	k2, _ := compileSet(t, rw, profiles.Selector{Action: profiles.ActionPost,
		Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 80, Hi: 80}}}})
	if k2.DportSet != k.DportSet {
		t.Fatalf("freed port set %d not reused (got %d)", k.DportSet, k2.DportSet)
	}
	if portIn(t, rw, k2.DportSet, 4005) || !portIn(t, rw, k2.DportSet, 80) {
		t.Error("a reused port set keeps the old ports")
	}
}

func TestCompileSelectorNamesAndBinaries(t *testing.T) {
	rw := mapsOnlyWriter(t)
	long := strings.Repeat("n", profiles.MaxNameLen)
	k, w := compileSet(t, rw, profiles.Selector{Action: profiles.ActionSigkill,
		Names: profiles.NameMatch{Not: true, Names: []string{"sh", "bash", long}},
		Binaries: []profiles.BinaryMatch{
			{Operator: profiles.BinaryIn, Values: []string{"/bin/busybox", "/usr/bin/nc"}},
			{Operator: profiles.BinaryNotPrefix, Values: []string{"/usr/", "/opt/x"}},
			{Operator: profiles.BinaryPostfix, Values: []string{"box", "/nc"}},
		}})
	if k.Match != bpf.MatchNameNot|bpf.MatchBin|bpf.MatchBinPrefixNot|bpf.MatchBinPostfix {
		t.Fatalf("match %#x", k.Match)
	}
	sets := []uint32{k.NameSet, k.BinSet, k.PrefixSet, k.PostfixSet}
	slices.Sort(sets)
	if sets = slices.Compact(sets); len(sets) != 4 || sets[0] == 0 {
		t.Fatalf("sets not distinct: %+v", k)
	}
	for _, n := range []string{"sh", "bash", long} {
		key := bpf.FallbackNameKey{Set: k.NameSet}
		bpf.PutCString(key.Name[:], n)
		var v uint8
		if err := rw.m.NameSets.Lookup(key, &v); err != nil {
			t.Errorf("name %q not in its set: %v", n, err)
		}
	}
	for _, p := range []string{"/bin/busybox", "/usr/bin/nc"} {
		var v uint8
		if err := rw.m.BinSets.Lookup(bpf.FallbackBinKey{Set: k.BinSet, Hash: bpf.PathHash(p)}, &v); err != nil {
			t.Errorf("binary %q not in its set: %v", p, err)
		}
	}
	for path, want := range map[string]bool{"/usr/bin/busybox": true, "/usr": false, "/bin/busybox": false, "/opt/xyz": true, "/opt/": false} {
		if got := pathIn(t, rw, k.PrefixSet, path, false); got != want {
			t.Errorf("prefix set: %q in = %v, want %v", path, got, want)
		}
	}
	for path, want := range map[string]bool{"/bin/busybox": true, "/usr/bin/nc": true, "/usr/bin/ncat": false, "box/x": false, "nc": false} {
		if got := pathIn(t, rw, k.PostfixSet, path, true); got != want {
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
	if c := rw.setCounts(t); c != (bpftest.Sets{}) {
		t.Fatalf("after release: %+v", c)
	}
	if err := w.release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
}
