package agent

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/profiles"
)

func TestNeededPoints(t *testing.T) {
	sel := []profiles.Selector{{Action: profiles.ActionPost}}
	bin := []profiles.Selector{{Action: profiles.ActionPost, Binaries: []profiles.BinaryMatch{{Operator: profiles.BinaryIn, Values: []string{"/bin/sh"}}}}}
	names := []profiles.Selector{{Action: profiles.ActionPost, Names: profiles.NameMatch{Names: []string{"sh"}}}}
	at := func(pt profiles.Point, s []profiles.Selector) profiles.Profile {
		var p profiles.Profile
		p.Points[pt] = s
		p.NoProcessEvents = true
		return p
	}
	for _, tc := range []struct {
		name string
		p    profiles.Profile
		want []string
	}{
		{"nothing", profiles.Profile{NoProcessEvents: true}, nil},
		{"process events alone need tracking", profiles.Profile{}, []string{"tracking"}},
		{"a point with selectors", at(profiles.PointConnect, sel), []string{"connect"}},
		{"names need no tracking", at(profiles.PointExec, names), []string{"exec"}},
		{"binaries need tracking", at(profiles.PointSendmsg, bin), []string{"sendmsg", "tracking"}},
		{"relays need connect and tracking", at(profiles.PointRelay, sel), []string{"connect", "relay", "tracking"}},
		{"TrackSock needs tracking", func() profiles.Profile {
			p := at(profiles.PointBind, sel)
			p.TrackSockets = true
			return p
		}(), []string{"bind", "tracking"}},
	} {
		if got := neededPoints(&tc.p); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: needs %q, want %q", tc.name, got, tc.want)
		}
	}
}

// degradedBackends: connect and sock_create enforce; exec does not (its
// reason is a two-line verifier log) and neither does sendmsg.
func degradedBackends() []enforcer.PointBackend {
	return []enforcer.PointBackend{
		{Point: enforcer.PointTracking, Backend: bpf.BackendTracepoint, Mechanism: "raw_tracepoint/sched_process_exec"},
		{Point: "connect", Backend: "fallback", Mechanism: "cgroup/connect4"},
		{Point: "sock_create", Backend: "fallback", Mechanism: "cgroup/sock_create"},
		{Point: "sendmsg", Backend: enforcer.BackendNone, Mechanism: "unavailable", Error: "no backend could attach: fallback: EPERM"},
		{Point: "exec", Backend: enforcer.BackendNone, Mechanism: "unavailable",
			Error: "no backend could attach: lsm: bpf is not active; fallback: verifier: R1 invalid mem access\n(3 lines omitted)"},
	}
}

const execReason = "no backend could attach: lsm: bpf is not active; fallback: verifier: R1 invalid mem access (3 lines omitted)"

// A registration whose profile needs an unavailable point is refused with
// the point and the kernel's reason, under the profile's failure policy,
// and leaves nothing behind: no record, no map entry, no registry entry.
func TestRegisterRefusedWhenPointUnavailable(t *testing.T) {
	h := newFakeHost(t)
	st := openState(t)
	enf := newFakeEnforcer()
	enf.backends = degradedBackends()
	a := stateAgent(t, h, enf, st, openCatalog(t, true))
	enf.takeOps()
	for _, tc := range []struct {
		team, policy string
	}{{"", api.FailClosed}, {"audit", api.FailOpen}} {
		// default needs exec (shell-stdio-inet); audit reports connects
		// only, but here its policy is tcp_sendmsg as well.
		r := h.registration("c-"+tc.team, 100, "/pods/c-"+tc.team)
		r.Annotations = map[string]string{"team": tc.team}
		profile, point, why := "default", "exec", execReason
		if tc.team == "audit" {
			profile, point, why = "audit", "sendmsg", "no backend could attach: fallback: EPERM"
		}
		_, err := a.Register(r)
		want := `container "c-` + tc.team + `": profile "` + profile + `" needs enforcement point ` + point + `, unavailable on this kernel: ` + why
		var pe *api.PolicyError
		var ue *UnavailableError
		if !errors.As(err, &pe) || pe.FailurePolicy != tc.policy || !errors.As(err, &ue) || err.Error() != want {
			t.Fatalf("team %q: %v (%+v)\nwant %s, failure policy %s", tc.team, err, pe, want, tc.policy)
		}
	}
	wantOps(t, enf)
	if a.Registry().Len() != 0 || len(enf.mapEntries()) != 0 || len(records(t, st)) != 0 {
		t.Fatalf("half registered: registry %d, map %v, records %v", a.Registry().Len(), enf.mapEntries(), records(t, st))
	}
	c := a.Status().Counters
	if c["registrations_refused_unavailable"] != 2 || c["registration_errors"] != 2 || c["enforcement_points_unavailable"] != 2 {
		t.Fatalf("counters %v", c)
	}
	// A profile that needs only what works registers.
	r := h.registration("c-ns", 101, "/pods/c-ns")
	r.Annotations = map[string]string{"team": "ns"}
	if _, err := a.Register(r); err == nil || !strings.Contains(err.Error(), "needs enforcement point exec") {
		t.Fatalf("ns (internal shell-stdio-inet at exec): %v", err)
	}
}

// openCatalog is the test catalog with the audit profile fail-open; with
// sendmsg, the audit policy reports tcp_sendmsg as well as tcp_connect.
func openCatalog(t *testing.T, sendmsg bool) *profiles.Catalog {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "profiles", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "  mode: monitor\n", "  mode: monitor\n  failurePolicy: open\n", 1)
	if sendmsg {
		text = strings.Replace(text, `  name: ocigate-audit
spec:
  kprobes:
  - call: tcp_connect
    syscall: false
    args:
    - index: 0
      type: sock
    selectors:
    - matchActions:
      - action: Post
`, `  name: ocigate-audit
spec:
  kprobes:
  - call: tcp_connect
    syscall: false
    args:
    - index: 0
      type: sock
    selectors:
    - matchActions:
      - action: Post
  - call: tcp_sendmsg
    syscall: false
    args:
    - index: 0
      type: sock
    selectors:
    - matchActions:
      - action: Post
`, 1)
	}
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := profiles.NewCatalogFiles(false, path)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := c.Get("audit"); sendmsg && (!ok || len(p.Points[profiles.PointSendmsg]) == 0) {
		t.Fatal("the audit profile has no sendmsg selectors")
	}
	return c
}

// Status names the unavailable points with the reason; the metrics say
// which points are available.
func TestStatusAndMetricsNameUnavailablePoints(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	enf.backends = degradedBackends()
	a := newTestAgent(t, h, enf)
	var got []api.Backend
	for _, b := range a.Status().Backends {
		if b.Error != "" {
			got = append(got, b)
		}
	}
	want := []api.Backend{
		{Point: "sendmsg", Backend: enforcer.BackendNone, Mechanism: "unavailable", Error: "no backend could attach: fallback: EPERM", Unneeded: true},
		{Point: "exec", Backend: enforcer.BackendNone, Mechanism: "unavailable", Error: execReason},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("unavailable backends in status %+v, want %+v", got, want)
	}
	if e := a.Enforcement(); e != "degraded: 1 point unavailable (exec); unavailable, needed by none: sendmsg" {
		t.Fatalf("Enforcement() = %q", e)
	}
	samples := scrape(t, a)
	for point, v := range map[string]string{"exec": "0", "sendmsg": "0", "connect": "1", "sock_create": "1", "tracking": "1"} {
		reason := ""
		if v == "0" {
			reason = metricReason(a.unavailable[point])
		}
		key := `ocigate_enforcement_point_available{point="` + point + `",reason="` + reason + `"}`
		if got := samples[key]; got != v {
			t.Errorf("%s = %q, want %s", key, got, v)
		}
	}
	enf.backends = degradedBackends()[:3]
	if e := newTestAgent(t, h, enf).Enforcement(); e != "complete" {
		t.Fatalf("Enforcement() with every point = %q", e)
	}
	// A point no loaded profile needs (receive, which Debian's 6.1 lacks)
	// is said, but does not make the agent degraded.
	enf.backends = append(degradedBackends()[:3], enforcer.PointBackend{Point: "receive", Backend: enforcer.BackendNone,
		Mechanism: "unavailable", Error: "no backend could attach: fallback: unknown func bpf_get_current_task"})
	wantSum := "complete for the loaded profiles; unavailable, needed by none: receive"
	if e := newTestAgent(t, h, enf).Enforcement(); e != wantSum {
		t.Fatalf("Enforcement() with an unneeded point missing = %q, want %q", e, wantSum)
	}
}

// A reload that gives a running workload a profile needing an
// unavailable point keeps it on its current rules (they stay loaded),
// says why, and moves everyone else; a later reload that fits moves it
// and drops those rules.
func TestReloadKeepsWorkloadOnCurrentRules(t *testing.T) {
	h := newFakeHost(t)
	st := openState(t)
	enf := newFakeEnforcer()
	enf.backends = degradedBackends()[:4] // exec works here, sendmsg does not
	a := stateAgent(t, h, enf, st, openCatalog(t, false))
	regs := map[string]uint64{}
	for i, team := range []string{"audit", "other"} {
		r := h.registration("c-"+team, 100+i, "/pods/c-"+team)
		r.Annotations = map[string]string{"team": team}
		if _, err := a.Register(r); err != nil {
			t.Fatal(err)
		}
		regs[team] = r.Identity.CgroupID
	}
	enf.takeOps()
	if err := a.Reload(openCatalog(t, true)); err != nil {
		t.Fatal(err)
	}
	ops := enf.takeOps()
	if slices.Contains(ops, "unload 2") || !slices.Contains(ops, "unload 1") || !slices.Contains(ops, "set "+itoa(regs["other"])+" 4 enforce") {
		t.Fatalf("reload ops %q: want default moved to id 4, audit's id 2 kept", ops)
	}
	if got := enf.mapEntries()[regs["audit"]]; got != 2 {
		t.Fatalf("kept workload on profile id %d, want 2", got)
	}
	w, _ := a.Registry().Get("c-audit")
	if w.Profile != "audit" || w.Mode != "monitor" || !strings.Contains(w.ProfileReason, "kept on its current rules") ||
		!strings.Contains(w.ProfileReason, "needs enforcement point sendmsg") {
		t.Fatalf("kept workload %+v", w)
	}
	if rec := records(t, st)[regs["audit"]]; rec != "c-audit:audit" {
		t.Fatalf("record %q", rec)
	}
	if p, ok := a.profileByID(2); !ok || len(p.Points[profiles.PointConnect]) == 0 {
		t.Fatalf("events of the kept id 2 name %+v", p)
	}
	if c := a.Status().Counters; c["profiles_retained"] != 1 {
		t.Fatalf("counters %v", c)
	}
	// New workloads of that profile are refused.
	r := h.registration("c-new", 102, "/pods/c-new")
	r.Annotations = map[string]string{"team": "audit"}
	if _, err := a.Register(r); err == nil || !strings.Contains(err.Error(), "needs enforcement point sendmsg") {
		t.Fatalf("new audit workload: %v", err)
	}
	// A reload that fits moves it and drops the kept rules.
	if err := a.Reload(openCatalog(t, false)); err != nil {
		t.Fatal(err)
	}
	if ops := enf.takeOps(); !slices.Contains(ops, "unload 2") {
		t.Fatalf("reload ops %q: the kept rules of id 2 stay", ops)
	}
	w, _ = a.Registry().Get("c-audit")
	if enf.mapEntries()[regs["audit"]] == 2 || strings.Contains(w.ProfileReason, "kept") {
		t.Fatalf("after the second reload %+v on id %d", w, enf.mapEntries()[regs["audit"]])
	}
	if c := a.Status().Counters; c["profiles_retained"] != 0 {
		t.Fatalf("counters %v", c)
	}
}

// An agent restarted where a restored workload's profile needs an
// unavailable point keeps it on its pinned rules.
func TestRestoreKeepsWorkloadWhosePointIsUnavailable(t *testing.T) {
	h := newFakeHost(t)
	st := openState(t)
	enf := newFakeEnforcer()
	a := stateAgent(t, h, enf, st, testCatalog(t))
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	enf2 := enf.restarted()
	enf2.backends = degradedBackends()
	a2 := stateAgent(t, h, enf2, st, testCatalog(t))
	if ops := enf2.takeOps(); slices.Contains(ops, "unload 1") || slices.ContainsFunc(ops, func(op string) bool { return strings.HasPrefix(op, "set ") }) {
		t.Fatalf("ops %q: want the pinned id 1 kept, the workload not moved", ops)
	}
	w, ok := a2.Registry().Get("c1")
	if !ok || w.Profile != "default" || !strings.Contains(w.ProfileReason, "kept on the rules pinned") ||
		!strings.Contains(w.ProfileReason, `profile "default" needs enforcement point exec`) {
		t.Fatalf("restored workload %+v", w)
	}
	if got := enf2.mapEntries()[w.CgroupID]; got != 1 {
		t.Fatalf("restored workload on profile id %d, want 1", got)
	}
}
