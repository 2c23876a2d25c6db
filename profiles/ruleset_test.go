package profiles

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPointAndActionNames(t *testing.T) {
	seen := map[string]bool{}
	for p := Point(0); p < NumPoints; p++ {
		s := p.String()
		if s == "" || strings.HasPrefix(s, "point(") || seen[s] {
			t.Errorf("point %d has name %q", int(p), s)
		}
		seen[s] = true
	}
	for p, want := range map[Point]string{PointConnect: "connect", PointSendmsg: "sendmsg", PointBind: "bind",
		PointSockCreate: "sock_create", PointExec: "exec", NumPoints: "point(" + strconv.Itoa(int(NumPoints)) + ")", -1: "point(-1)"} {
		if got := p.String(); got != want {
			t.Errorf("Point(%d) = %q, want %q", int(p), got, want)
		}
	}
	for a, want := range map[Action]string{ActionPost: "Post", ActionOverride: "Override", ActionSigkill: "Sigkill", 0: "action(0)", 9: "action(9)"} {
		if got := a.String(); got != want {
			t.Errorf("Action(%d) = %q, want %q", int(a), got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	sel := func(mod func(s *Selector)) func(p *Profile) {
		return func(p *Profile) {
			s := Selector{Call: "x", Action: ActionPost}
			mod(&s)
			p.Points[PointConnect] = []Selector{s}
		}
	}
	tests := []struct {
		name string
		mod  func(p *Profile)
		want string // "" = valid
	}{
		{"valid", func(*Profile) {}, ""},
		{"monitor", func(p *Profile) { p.Mode = ModeMonitor }, ""},
		{"empty points", func(p *Profile) { p.Points = [NumPoints][]Selector{} }, ""},
		{"no name", func(p *Profile) { p.Name = "" }, "has no name"},
		{"bad mode", func(p *Profile) { p.Mode = "audit" }, `mode "audit"`},
		{"empty mode", func(p *Profile) { p.Mode = "" }, `mode ""`},
		{"too many selectors", func(p *Profile) { p.Points[PointExec] = make([]Selector, MaxSelectors+1) }, "exec: 17 selectors, at most 16"},
		{"max selectors", func(p *Profile) {
			p.Points[PointBind] = slices.Repeat([]Selector{{Action: ActionPost}}, MaxSelectors)
		}, ""},
		{"no action", sel(func(s *Selector) { s.Action = 0 }), "connect selector 0: unknown action 0"},
		{"action out of range", sel(func(s *Selector) { s.Action = ActionNotifyEnforcer + 1 }), "unknown action 6"},
		{"group out of range", sel(func(s *Selector) { s.Group = MaxGroups }), "at most 8 policies"},
		{"signal without number", sel(func(s *Selector) { s.Action = ActionSignal }), "Signal action without a signal"},
		{"signal out of range", sel(func(s *Selector) { s.Action, s.Signal = ActionSignal, 65 }), "signal 65"},
		{"family out of range", sel(func(s *Selector) { s.Families = []uint8{40} }), "value 40 out of range"},
		{"negative errno", sel(func(s *Selector) { s.Action, s.Errno = ActionOverride, -1 }), "errno -1"},
		{"empty port range", sel(func(s *Selector) { s.Dport = PortMatch{Not: true, Ranges: []PortRange{{Lo: 9, Hi: 8}}} }), "port range 9-8 is empty"},
		{"single port", sel(func(s *Selector) { s.Dport = PortMatch{Ranges: []PortRange{{Lo: 22, Hi: 22}}} }), ""},
		{"empty name", sel(func(s *Selector) { s.Names = NameMatch{Not: true, Names: []string{""}} }), `name ""`},
		{"long name", sel(func(s *Selector) { s.Names = NameMatch{Names: []string{strings.Repeat("b", MaxNameLen+1)}} }), "want 1 to 32 bytes"},
		{"name at limit", sel(func(s *Selector) { s.Names = NameMatch{Names: []string{strings.Repeat("b", MaxNameLen)}} }), ""},
		{"two exact binary sets", sel(func(s *Selector) {
			s.Binaries = []BinaryMatch{{BinaryIn, []string{"/bin/sh"}}, {BinaryNotIn, []string{"/bin/bash"}}}
		}), "two matchBinaries matches of kind In"},
		{"prefix and postfix", sel(func(s *Selector) {
			s.Binaries = []BinaryMatch{{BinaryPrefix, []string{"/usr/"}}, {BinaryNotPostfix, []string{"sh"}}}
		}), ""},
		{"long prefix", sel(func(s *Selector) {
			s.Binaries = []BinaryMatch{{BinaryPrefix, []string{strings.Repeat("p", MaxPrefixLen+1)}}}
		}), "want 1 to 128 bytes"},
		{"bad binary operator", sel(func(s *Selector) { s.Binaries = []BinaryMatch{{"Equal", []string{"/x"}}} }), `binary operator "Equal"`},
		{"invalid prefix", sel(func(s *Selector) { s.Daddr = AddrMatch{Not: true, Prefixes: []netip.Prefix{{}}} }), "invalid address prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Profile{Name: "p", Mode: ModeEnforce}
			p.Points[PointConnect] = []Selector{{Call: "tcp_connect", Action: ActionOverride}}
			tt.mod(p)
			err := p.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), `profile "`) && tt.name != "no name" {
				t.Errorf("error %q does not name the profile", err)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	p := Default()
	if err := p.Validate(); err != nil {
		t.Fatalf("default profile invalid: %v", err)
	}
	if p.Name != DefaultName || p.Mode != ModeEnforce || p.FailOpen {
		t.Fatalf("default profile header %+v", p)
	}
	attacker := netip.MustParsePrefix("127.0.0.2/32")
	for _, pt := range []Point{PointConnect, PointSendmsg} {
		sels := p.Points[pt]
		if len(sels) == 0 {
			t.Fatalf("%s: no selectors", pt)
		}
		for i, s := range sels {
			if s.Action != ActionOverride || s.Errno != int(unix.EPERM) || !slices.Equal(s.Daddr.Prefixes, []netip.Prefix{attacker}) || s.Daddr.Not || s.Policy == "" {
				t.Errorf("%s selector %d: %+v", pt, i, s)
			}
		}
	}
	if c := p.Points[PointConnect][0]; c.Call != "tcp_connect" || !slices.Equal(c.Protocols, []uint8{unix.IPPROTO_TCP}) {
		t.Errorf("first connect selector %+v, want tcp_connect for TCP (the seeds' jq filters select on it)", c)
	}
	// Packet sockets are SOCK_RAW too: their Sigkill must come before the
	// raw-socket Override, or the first match would only refuse them.
	sc := p.Points[PointSockCreate]
	packet := slices.IndexFunc(sc, func(s Selector) bool { return slices.Equal(s.Families, []uint8{unix.AF_PACKET}) })
	raw := slices.IndexFunc(sc, func(s Selector) bool {
		return slices.Equal(s.SockTypes, []uint8{unix.SOCK_RAW}) && slices.Equal(s.Families, []uint8{unix.AF_INET, unix.AF_INET6})
	})
	if packet < 0 || raw < 0 || packet > raw || sc[packet].Action != ActionSigkill || sc[raw].Action != ActionOverride {
		t.Errorf("sock_create selectors %+v", sc)
	}
	ex := p.Points[PointExec]
	if len(ex) != 1 || ex[0].Action != ActionSigkill || !ex[0].StdioInet || !slices.Contains(ex[0].Names.Names, "sh") || !slices.Contains(ex[0].Names.Names, "bash") {
		t.Errorf("exec selectors %+v", ex)
	}
}

// Each call returns a profile of its own: changing one (e.g. to derive a
// custom profile) must not change what later calls return.
func TestDefaultReturnsIndependentProfiles(t *testing.T) {
	a := Default()
	orig := a.Points[PointExec][0].Names.Names[0]
	t.Cleanup(func() { a.Points[PointExec][0].Names.Names[0] = orig }) // keep other tests clean while this bug exists
	a.Points[PointExec][0].Names.Names[0] = "python"
	a.Points[PointConnect][0].Daddr.Prefixes[0] = netip.MustParsePrefix("0.0.0.0/0")
	b := Default()
	if got := b.Points[PointExec][0].Names.Names[0]; got != "sh" {
		t.Errorf("Default() exec BinaryIn[0] = %q after a caller changed an earlier profile, want \"sh\"", got)
	}
	if got := b.Points[PointConnect][0].Daddr.Prefixes[0]; got != netip.MustParsePrefix("127.0.0.2/32") {
		t.Errorf("Default() connect DaddrIn[0] = %v after a caller changed an earlier profile", got)
	}
}
