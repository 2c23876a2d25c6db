package policy

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ocigate/ocigate/internal/seeds"
)

// loadSeeds loads the seed policies (internal/seeds) and returns them by
// name.
func loadSeeds(t *testing.T) map[string]*TracingPolicy {
	t.Helper()
	dir := seeds.Dir(t)
	pols, profs, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir(%s): %v", dir, err)
	}
	if len(pols) != 7 || len(profs) != 0 {
		t.Fatalf("got %d policies and %d profiles, want 7 and 0", len(pols), len(profs))
	}
	out := map[string]*TracingPolicy{}
	for _, p := range pols {
		out[p.Name] = p
	}
	return out
}

func TestSeedsParseOneByOne(t *testing.T) {
	dir := seeds.Dir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) != 7 {
		t.Fatalf("glob: %v, %d files", err, len(files))
	}
	for _, f := range files {
		docs, err := ParseFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(docs) != 1 || docs[0].Policy == nil || docs[0].Profile != nil {
			t.Errorf("%s: got %+v, want one policy", f, docs)
			continue
		}
		p := docs[0].Policy
		if p.Pos != (Pos{f, 2}) || p.Mode != "" || len(p.Kprobes) == 0 {
			t.Errorf("%s: pos %v mode %q %d kprobes", f, p.Pos, p.Mode, len(p.Kprobes))
		}
	}
}

func TestSeed01(t *testing.T) {
	p := loadSeeds(t)["detect-reverse-shell-outbound"]
	k := p.Kprobes[0]
	if k.Call != "tcp_connect" || k.Return || len(k.Args) != 1 || k.Args[0].Type != "sock" || k.Pos.Line != 8 {
		t.Fatalf("kprobe %+v", k)
	}
	m := k.Selectors[0].Args[0]
	if m.Operator != "NotDAddr" || m.ArgType != "sock" || m.Pos.Line != 15 || len(m.Prefixes) != 8 {
		t.Fatalf("matchArgs %+v", m)
	}
	if m.Prefixes[5] != netip.MustParsePrefix("::1/128") || m.Prefixes[7] != netip.MustParsePrefix("fc00::/7") {
		t.Errorf("IPv6 prefixes %v", m.Prefixes)
	}
	if m.Raw[4] != "169.254.0.0/16" {
		t.Errorf("raw %q (the comment must not be part of the value)", m.Raw[4])
	}
	a := k.Selectors[0].Actions
	if len(a) != 1 || a[0].Action != "Post" || k.Selectors[0].ImplicitPost || a[0].Line != 27 {
		t.Errorf("actions %+v", a)
	}
}

func TestSeed02(t *testing.T) {
	p := loadSeeds(t)["detect-bind-shell"]
	if len(p.Kprobes) != 3 {
		t.Fatalf("%d kprobes", len(p.Kprobes))
	}
	alloc, free, listen := p.Kprobes[0], p.Kprobes[1], p.Kprobes[2]
	if alloc.Call != "sk_alloc" || !alloc.Return || alloc.ReturnArgAction != "TrackSock" {
		t.Errorf("sk_alloc %+v", alloc)
	}
	if alloc.ReturnArg == nil || *alloc.ReturnArg != (Arg{Pos: Pos{alloc.File, 17}, Index: 0, Type: "sock"}) {
		t.Errorf("returnArg %+v", alloc.ReturnArg)
	}
	if alloc.Args[0] != (Arg{Pos: Pos{alloc.File, 13}, Index: 1, Type: "int", Label: "family"}) {
		t.Errorf("args %+v", alloc.Args)
	}
	eq := alloc.Selectors[0].Args[0]
	if eq.Operator != "Equal" || !reflect.DeepEqual(eq.Numbers, []int64{2, 10}) || !reflect.DeepEqual(eq.Raw, []string{"2", "10"}) {
		t.Errorf("Equal %+v", eq)
	}
	if a := alloc.Selectors[0].Actions; len(a) != 1 || a[0].Action != "NoPost" {
		t.Errorf("sk_alloc actions %+v", a)
	}
	if free.Call != "__sk_free" || free.Selectors[0].Args[0].Operator != "Family" ||
		!reflect.DeepEqual(free.Selectors[0].Args[0].Numbers, []int64{2, 10}) {
		t.Errorf("__sk_free %+v", free)
	}
	fa := free.Selectors[0].Actions
	if len(fa) != 2 || fa[0].Action != "UntrackSock" || fa[0].ArgSock != 0 || fa[0].Line != 44 || fa[1].Action != "NoPost" {
		t.Errorf("__sk_free actions %+v", fa)
	}
	ls := listen.Selectors[0]
	if listen.Call != "inet_csk_listen_start" || ls.Args[0].Operator != "SPort" || len(ls.Args[0].Ports) != 7 ||
		ls.Args[0].Ports[3] != (PortRange{31337, 31337}) {
		t.Errorf("listen %+v", listen)
	}
	if !ls.ImplicitPost || len(ls.Actions) != 1 || ls.Actions[0].Action != "Post" {
		t.Errorf("implicit post %+v", ls)
	}
}

func TestSeed03(t *testing.T) {
	p := loadSeeds(t)["detect-reverse-shell-all-protocols"]
	k := p.Kprobes[0]
	if k.Call != "security_socket_connect" || len(k.Args) != 3 || k.Args[1].Type != "sockaddr" || k.Args[2].Type != "int" {
		t.Fatalf("kprobe %+v", k)
	}
	m := k.Selectors[0].Args
	if len(m) != 3 {
		t.Fatalf("matchArgs %+v", m)
	}
	if m[0].Operator != "Protocol" || m[0].ArgType != "socket" || !reflect.DeepEqual(m[0].Numbers, []int64{6, 17}) {
		t.Errorf("Protocol %+v", m[0])
	}
	if m[1].Operator != "Family" || m[1].ArgType != "sockaddr" || !reflect.DeepEqual(m[1].Numbers, []int64{2, 10}) ||
		!reflect.DeepEqual(m[1].Raw, []string{"AF_INET", "AF_INET6"}) {
		t.Errorf("Family %+v", m[1])
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("127.0.0.0/8")}
	if m[2].Operator != "NotSAddr" || m[2].Index != 1 || !reflect.DeepEqual(m[2].Prefixes, want) {
		t.Errorf("NotSAddr %+v", m[2])
	}
	if !k.Selectors[0].ImplicitPost {
		t.Errorf("want implicit Post")
	}
}

func TestSeed04To07(t *testing.T) {
	seeds := loadSeeds(t)
	p := seeds["enforce-no-reverse-shell"]
	s := p.Kprobes[0].Selectors[0]
	if len(s.Actions) != 1 || s.Actions[0].Action != "Sigkill" || s.ImplicitPost {
		t.Errorf("05 actions %+v", s.Actions)
	}
	if s.Args[0].Operator != "NotDAddr" || len(s.Args[0].Prefixes) != 4 {
		t.Errorf("05 matchArgs %+v", s.Args)
	}
	if len(s.Binaries) != 1 || s.Binaries[0].Operator != "In" || len(s.Binaries[0].Values) != 8 ||
		s.Binaries[0].Values[7] != "/usr/bin/perl" || s.Binaries[0].Line != 16 {
		t.Errorf("05 binaries %+v", s.Binaries)
	}
	if b := seeds["detect-encrypted-reverse-shell"].Kprobes[0].Selectors[0].Binaries[0]; b.Values[3] != "/usr/bin/ncat" {
		t.Errorf("04 binaries %+v", b)
	}
	k := seeds["egress-all-protocols"].Kprobes[0]
	if len(k.Args) != 2 || k.Selectors[0].Args[1].Operator != "NotSAddr" || !k.Selectors[0].ImplicitPost {
		t.Errorf("06 %+v", k)
	}
	s = seeds["egress-suspicious-binaries"].Kprobes[0].Selectors[0]
	if len(s.Binaries[0].Values) != 3 || s.Args[0].Operator != "NotDAddr" || !s.ImplicitPost {
		t.Errorf("07 %+v", s)
	}
}
