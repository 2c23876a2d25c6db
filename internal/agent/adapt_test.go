package agent

import (
	"slices"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/profiles"
)

func TestAdaptToBackends(t *testing.T) {
	p := &profiles.Profile{Name: "p", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointBind] = []profiles.Selector{{Policy: "b", Group: 0, Action: profiles.ActionPost},
		{Policy: "b", Group: 1, Action: profiles.ActionPost}}
	p.Points[profiles.PointListen] = []profiles.Selector{
		{Policy: "l", Call: "inet_csk_listen_start", Group: 0, Protocols: []uint8{unix.IPPROTO_TCP}, Action: profiles.ActionOverride},
		{Policy: "m", Call: "inet_csk_listen_start", Group: 1, Action: profiles.ActionPost,
			Namespaces: []profiles.NamespaceMatch{withHost(nsIn("Net"))}},
	}
	withListen := []enforcer.PointBackend{{Point: "listen", Backend: bpf.BackendLSM}}
	noListen := []enforcer.PointBackend{{Point: "listen", Backend: enforcer.BackendNone}}

	if q := adaptToBackends(p, withListen, zap.NewNop()); q != p {
		t.Fatal("a kernel with a listen hook changed the profile")
	}
	for _, backends := range [][]enforcer.PointBackend{noListen, nil} {
		q := adaptToBackends(p, backends, zap.NewNop())
		if q == p || len(q.Points[profiles.PointListen]) != 0 {
			t.Fatalf("listen selectors left at listen: %+v", q.Points[profiles.PointListen])
		}
		bind := q.Points[profiles.PointBind]
		if len(bind) != 4 || bind[2].Policy != "l" || bind[3].Policy != "m" || bind[2].Group != 2 || bind[3].Group != 3 {
			t.Fatalf("bind selectors %+v", bind)
		}
		if !slices.Equal(bind[3].Protocols, []uint8{unix.IPPROTO_TCP}) || !slices.Equal(bind[2].Protocols, []uint8{unix.IPPROTO_TCP}) {
			t.Fatalf("listen selectors at bind are not TCP only: %v %v", bind[2].Protocols, bind[3].Protocols)
		}
		if err := q.Validate(); err != nil {
			t.Fatal(err)
		}
		// The catalog's profile is untouched.
		if len(p.Points[profiles.PointListen]) != 2 || len(p.Points[profiles.PointBind]) != 2 || p.Points[profiles.PointListen][1].Protocols != nil {
			t.Fatalf("the original profile changed: %+v", p.Points)
		}
		// matchNamespaces go along: the masks are the adapted profile's.
		d := disabledSelectors(q, containerNS, hostNS)
		if d[profiles.PointBind] != 1<<3 || d[profiles.PointListen] != 0 {
			t.Fatalf("masks %#x", d)
		}
	}
	// When they do not fit, they stay (inactive) at listen.
	full := *p
	full.Points[profiles.PointBind] = make([]profiles.Selector, profiles.MaxSelectors-1)
	for i := range full.Points[profiles.PointBind] {
		full.Points[profiles.PointBind][i] = profiles.Selector{Action: profiles.ActionPost}
	}
	if q := adaptToBackends(&full, noListen, zap.NewNop()); q != &full {
		t.Fatal("selectors moved beyond the limit")
	}
}
