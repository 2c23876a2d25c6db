package agent

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/profiles"
)

// xmitPolicy is the Tetragon test policy on dev_hard_start_xmit, which
// the profile xmit (testdata/profiles/xmit.yaml) lists: it needs the xmit
// point.
var xmitPolicy = filepath.Join("..", "..", "profiles", "testdata", "tetragon", "net-dev-hard-start-xmit.yaml")

const xmitProfile = "xmit"

func xmitCatalog(t *testing.T) *profiles.Catalog {
	t.Helper()
	c, err := profiles.NewCatalogFiles(false, filepath.Join("testdata", "profiles", "agent.yaml"), xmitPolicy,
		filepath.Join("testdata", "profiles", "xmit.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// perPacketEnforcer has the three per-packet points attached, as Load
// leaves them.
func perPacketEnforcer() *fakeEnforcer {
	enf := newFakeEnforcer()
	enf.onDemand = map[string]bool{"drop": true, "receive": true, "xmit": true}
	return enf
}

func TestPointUsers(t *testing.T) {
	at := func(name string, pts ...profiles.Point) *profiles.Profile {
		p := &profiles.Profile{Name: name, NoProcessEvents: true}
		for _, pt := range pts {
			p.Points[pt] = []profiles.Selector{{Action: profiles.ActionPost}}
		}
		return p
	}
	onDemand := []string{"drop", "receive", "xmit"}
	for _, tc := range []struct {
		name string
		ps   []*profiles.Profile
		want map[string]string
	}{
		{"none", nil, map[string]string{}},
		{"no per-packet point", []*profiles.Profile{at("a", profiles.PointConnect, profiles.PointAccept)}, map[string]string{}},
		{"first by name", []*profiles.Profile{at("b", profiles.PointXmit), at("a", profiles.PointXmit, profiles.PointReceive)},
			map[string]string{"xmit": "a", "receive": "a"}},
		{"each its own", []*profiles.Profile{at("d", profiles.PointDrop), at("x", profiles.PointXmit, profiles.PointConnect)},
			map[string]string{"drop": "d", "xmit": "x"}},
	} {
		if got := pointUsers(onDemand, tc.ps); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A point the enforcer does not switch (unavailable there) is no user's.
	if got := pointUsers([]string{"drop"}, []*profiles.Profile{at("a", profiles.PointXmit)}); len(got) != 0 {
		t.Errorf("xmit not on demand: %v", got)
	}
}

// The per-packet points follow the loaded profiles: detached at start
// when none needs them, attached by a reload before any workload is on
// the profile that needs it, detached again once its rules are gone.
func TestPerPacketPointsFollowProfiles(t *testing.T) {
	h := newFakeHost(t)
	enf := perPacketEnforcer()
	a, err := New(Config{Enforcer: enf, Resolver: h.resolver(), Catalog: testCatalog(t)})
	if err != nil {
		t.Fatal(err)
	}
	wantOps(t, enf, "load 1 default", "load 2 audit", "load 3 ns", "detach drop", "detach receive", "detach xmit")
	if got := detached(a); !reflect.DeepEqual(got, []string{"drop", "receive", "xmit"}) {
		t.Fatalf("status: detached %v", got)
	}

	if err := a.Reload(xmitCatalog(t)); err != nil {
		t.Fatal(err)
	}
	ops := enf.takeOps()
	at := slices.Index(ops, "attach xmit")
	if at < 0 || !slices.Contains(ops[:at], "load 7 "+xmitProfile) || slices.Contains(ops, "attach receive") || slices.Contains(ops, "attach drop") {
		t.Fatalf("reload ops %q: want xmit (only) attached after its profile's rules are written", ops)
	}
	for _, op := range ops[:at] {
		if strings.HasPrefix(op, "set ") || strings.HasPrefix(op, "unload ") {
			t.Fatalf("reload ops %q: %s before xmit is attached", ops, op)
		}
	}
	if got := detached(a); !reflect.DeepEqual(got, []string{"drop", "receive"}) {
		t.Fatalf("status: detached %v", got)
	}
	r := h.registration("c1", 100, "/pods/c1")
	r.Annotations = map[string]string{"ocigate.io/profile": xmitProfile}
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	enf.takeOps()

	// Its profile gone, the workload moves, and then xmit detaches.
	if err := a.Reload(testCatalog(t)); err == nil {
		t.Fatal("reload without the profile a workload's annotation names: want refused")
	}
	if ops := enf.takeOps(); slices.Contains(ops, "detach xmit") {
		t.Fatalf("refused reload detached xmit: %q", ops)
	}
	if err := a.Unregister("c1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(testCatalog(t)); err != nil {
		t.Fatal(err)
	}
	ops = enf.takeOps()
	det := slices.Index(ops, "detach xmit")
	if det < 0 || !slices.Contains(ops[:det], "unload 7") {
		t.Fatalf("reload ops %q: want xmit detached after its profile's rules are gone", ops)
	}
}

func detached(a *Agent) []string {
	var out []string
	st := a.Status()
	for _, b := range st.Backends {
		if b.Detached {
			out = append(out, b.Point)
		}
	}
	if uint64(len(out)) != st.Counters["enforcement_points_detached"] {
		return append(out, "counter disagrees")
	}
	return out
}

// A reload whose profile needs a point that does not attach is refused
// with the profile and the point named, and changes nothing: the new
// rules are unloaded, the points stay as they were.
func TestReloadRefusedWhenPointDoesNotAttach(t *testing.T) {
	h := newFakeHost(t)
	enf := perPacketEnforcer()
	a := newTestAgent(t, h, enf)
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	enf.takeOps()
	enf.failAttach = map[string]error{"xmit": errors.New("device or resource busy")}
	err := a.Reload(xmitCatalog(t))
	if err == nil || !strings.Contains(err.Error(), `reload refused, nothing changed: profile "`+xmitProfile+
		`" needs enforcement point xmit, which did not attach: device or resource busy`) {
		t.Fatalf("reload: %v", err)
	}
	wantOps(t, enf, "load 4 default", "load 5 audit", "load 6 ns", "load 7 "+xmitProfile,
		"unload 4", "unload 5", "unload 6", "unload 7")
	if got := enf.mapEntries()[r.Identity.CgroupID]; got != 1 {
		t.Fatalf("workload on id %d, want 1", got)
	}
	if st := a.Status(); len(st.Profiles) != 3 || st.Counters["profile_reload_errors"] != 1 {
		t.Fatalf("profiles %v, counters %v", st.Profiles, st.Counters)
	}
	if enf.onDemand["xmit"] {
		t.Fatal("xmit attached")
	}
}

// At start, a point that does not attach is unavailable: registrations
// whose profile needs it are refused with the reason; the others are
// not.
func TestStartAttachFailureMakesPointUnavailable(t *testing.T) {
	h := newFakeHost(t)
	enf := perPacketEnforcer()
	enf.onDemand["xmit"] = false // a restarted agent took it over detached
	enf.failAttach = map[string]error{"xmit": errors.New("device or resource busy")}
	a, err := New(Config{Enforcer: enf, Resolver: h.resolver(), Catalog: xmitCatalog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.Enforcement(), "degraded: 1 point unavailable (xmit)") {
		t.Fatalf("enforcement %q", a.Enforcement())
	}
	r := h.registration("c1", 100, "/pods/c1")
	r.Annotations = map[string]string{"ocigate.io/profile": xmitProfile}
	if _, err := a.Register(r); err == nil || !strings.Contains(err.Error(), "needs enforcement point xmit, unavailable on this kernel: did not attach: device or resource busy") {
		t.Fatalf("register: %v", err)
	}
	if _, err := a.Register(h.registration("c2", 101, "/pods/c2")); err != nil {
		t.Fatal(err)
	}
}

// Rules an agent inherited and cannot name (a workload kept on them)
// might need any point: every per-packet point stays attached until the
// workload goes.
func TestUnknownRetainedRulesKeepPointsAttached(t *testing.T) {
	h := newFakeHost(t)
	a := newTestAgent(t, h, newFakeEnforcer())
	a.retained[99] = &retainedProfile{name: "gone", entries: nil}
	enf := perPacketEnforcer()
	a.enf = enf
	a.mu.Lock()
	a.syncPoints()
	a.mu.Unlock()
	wantOps(t, enf)
	delete(a.retained, 99)
	a.mu.Lock()
	a.syncPoints()
	a.mu.Unlock()
	wantOps(t, enf, "detach drop", "detach receive", "detach xmit")
}
