package enforcer

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf/internal/bpftest"
	"github.com/ocigate/ocigate/profiles"
)

func TestLoadProfileValidatesAndReplaces(t *testing.T) {
	e, _ := loadForTest(t)
	bad := profiles.Default()
	bad.Mode = "sometimes"
	if err := e.LoadProfile(2, bad); err == nil {
		t.Fatal("invalid profile loaded")
	}
	// Reloading replaces point by point; a point without selectors is cleared.
	p := profiles.Default()
	p.Points[profiles.PointConnect] = nil
	if err := e.LoadProfile(1, p); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if err := e.LoadProfile(1, p); err != nil {
		t.Fatalf("reload of a cleared point: %v", err)
	}
	if _, ok := bpftest.RulesOf(&e.maps, 1, uint32(profiles.PointConnect)); ok {
		t.Fatal("connect rules left after the point was cleared")
	}
}

// (i) Replacing a live profile: the new sets apply, the old ones are
// gone, and unloading leaves what was there before.
func TestKernelReplaceProfile(t *testing.T) {
	k := newKernel(t)
	base := k.e.setCounts(t)
	v1 := connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.1/32", "127.0.0.9/32", "10.0.0.0/8"),
		Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 4005, Hi: 4005}}}, Action: profiles.ActionOverride,
		Binaries: []profiles.BinaryMatch{{Operator: "NotIn", Values: []string{"/nonexistent"}}}})
	k.use(v1, [profiles.NumPoints]uint32{})
	first := k.e.setCounts(t)
	if first != (bpftest.Sets{Addrs: base.Addrs + 3, Names: base.Names, Bins: base.Bins + 1, Paths: base.Paths, Ports: base.Ports + 1}) {
		t.Fatalf("v1 sets %+v (base %+v)", first, base)
	}
	_, errno := k.helper("connect", "tcp4", "127.0.0.1:4005")
	wantErrno(t, "v1: 4005", errno, unix.EPERM)

	v2 := connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.1/32"),
		Dport: profiles.PortMatch{Ranges: []profiles.PortRange{{Lo: 4006, Hi: 4006}}}, Action: profiles.ActionOverride})
	if err := k.e.LoadProfile(k.id, v2); err != nil {
		t.Fatal(err)
	}
	if c := k.e.setCounts(t); c != (bpftest.Sets{Addrs: base.Addrs + 1, Names: base.Names, Bins: base.Bins, Paths: base.Paths, Ports: base.Ports + 1}) {
		t.Fatalf("v2 sets %+v (base %+v)", c, base)
	}
	_, errno = k.helper("connect", "tcp4", "127.0.0.1:4005")
	wantErrno(t, "v2: 4005", errno, unix.ECONNREFUSED)
	_, errno = k.helper("connect", "tcp4", "127.0.0.1:4006")
	wantErrno(t, "v2: 4006", errno, unix.EPERM)

	if err := k.e.RemoveWorkload(k.cg); err != nil {
		t.Fatal(err)
	}
	if err := k.e.UnloadProfile(k.id); err != nil {
		t.Fatal(err)
	}
	if c := k.e.setCounts(t); c != base {
		t.Fatalf("after unload %+v, want %+v", c, base)
	}
}
