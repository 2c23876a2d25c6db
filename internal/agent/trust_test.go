package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/eventhub"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/hookreport"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/runtime/describe"
	"github.com/ocigate/ocigate/runtime/running"
)

// trustProfiles adds to the test catalog a monitor profile no annotation
// may choose (debug, chosen by the images of registry.internal/debug/),
// and a fail-open one.
const trustProfiles = `apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata: {name: debug}
spec:
  match: {images: ["registry.internal/debug/*"]}
  mode: monitor
  policies: [{name: ocigate-default}]
---
apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata: {name: open}
spec:
  match: {images: ["registry.internal/open/*"]}
  mode: enforce
  failurePolicy: open
  policies: [{name: ocigate-default}]
`

// trustAgent is an agent on the test catalog plus trustProfiles, whose
// runtime says what d says, trusting keys.
func trustAgent(t *testing.T, h *fakeHost, enf *fakeEnforcer, d Describer, keys ...string) *Agent {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trust.yaml")
	if err := os.WriteFile(path, []byte(trustProfiles), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := profiles.NewCatalogFiles(false, filepath.Join("testdata", "profiles", "agent.yaml"), path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Enforcer: enf, Resolver: h.resolver(), Catalog: c, Describer: d, TrustedAnnotations: keys})
	if err != nil {
		t.Fatal(err)
	}
	enf.takeOps()
	return a
}

// claimEvents returns the ocigate_claim events the agent published.
func claimEvents(t *testing.T, a *Agent) []*events.ClaimEvent {
	t.Helper()
	recent, _, err := a.hub.Subscribe(eventhub.Filter{Types: []string{events.TypeClaim}}, -1, false)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*events.ClaimEvent, len(recent))
	for i, ev := range recent {
		out[i] = ev.OcigateClaim
	}
	return out
}

// A container whose annotation asks for the monitor profile is refused,
// fail-closed, naming the annotation and the rule; nothing is written;
// the refusal is an event. The operator's trusted key lets it through.
func TestRegisterRefusesWeakerProfileAnnotation(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := trustAgent(t, h, enf, nil)
	r := h.registration("hostile", 100, "/pods/hostile")
	r.Annotations = map[string]string{"ocigate.io/profile": "debug", "ocigate.io/failure-policy": "open"}
	_, err := a.Register(r)
	var pe *api.PolicyError
	if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), `refused: annotation ocigate.io/profile=debug chose profile "debug": `+
		`profile "debug" is weaker than "default", which the container's identity selects (default): mode monitor instead of enforce`) {
		t.Fatalf("Register: %v (a refusal without a failure policy is closed)", err)
	}
	wantOps(t, enf)
	if a.Registry().Len() != 0 || a.Status().Counters["claims_refused"] != 1 {
		t.Fatalf("registry %d, counters %v", a.Registry().Len(), a.Status().Counters)
	}
	evs := claimEvents(t, a)
	if len(evs) != 1 || evs[0].Action != events.ClaimRefused || evs[0].RequestedProfile != "debug" || evs[0].Profile != "default" ||
		evs[0].Claims[0] != (events.ClaimArg{Key: "ocigate.io/profile", Value: "debug"}) || evs[0].ReportedBy != "agent" ||
		evs[0].Pod.Container.ID != "hostile" || !strings.Contains(evs[0].Rule, "has no spec.selectableBy") {
		t.Fatalf("events %+v", evs)
	}

	b := trustAgent(t, h, newFakeEnforcer(), nil, "ocigate.io/profile")
	if w, err := b.Register(r); err != nil || w.Profile != "debug" || !strings.Contains(w.ProfileReason, "--trusted-annotations") {
		t.Fatalf("trusted key: %+v, %v", w, err)
	}
}

// The image comes from the runtime's record: an annotation claiming
// another image's name does not select that image's profile, and the
// claim is reported as ignored. The same claim with no runtime record is
// ignored too; an operator-trusted key is identity.
func TestRegisterIgnoresClaimedImage(t *testing.T) {
	h := newFakeHost(t)
	d := &fakeDescriber{info: describe.Info{Image: "docker.io/library/busybox:latest", Digests: []string{"sha256:1"}, Source: "podman"}}
	a := trustAgent(t, h, newFakeEnforcer(), d)
	r := h.registration("claims", 100, "/pods/claims")
	r.Bundle = "/var/lib/containers/storage/overlay-containers/claims/userdata"
	r.Annotations = map[string]string{"io.kubernetes.cri.image-name": "registry.internal/debug/tool:1"}
	w, err := a.Register(r)
	if err != nil || w.Profile != "default" || w.Image != "docker.io/library/busybox:latest" || w.ImageDigests[0] != "sha256:1" {
		t.Fatalf("Register: %+v, %v", w, err)
	}
	evs := claimEvents(t, a)
	if len(evs) != 1 || evs[0].Action != events.ClaimIgnored || evs[0].Profile != "default" || evs[0].RequestedProfile != "debug" ||
		evs[0].Claims[0].Key != "io.kubernetes.cri.image-name" {
		t.Fatalf("events %+v", evs)
	}

	noRuntime := trustAgent(t, h, newFakeEnforcer(), nil)
	r2 := h.registration("claims-2", 101, "/pods/claims-2")
	r2.Annotations = map[string]string{"ocigate.io/image": "registry.internal/debug/tool:1"}
	if w, err := noRuntime.Register(r2); err != nil || w.Profile != "default" || w.ImageSource != "ocigate.io/image" {
		t.Fatalf("no runtime record: %+v, %v", w, err)
	}
	trusted := trustAgent(t, h, newFakeEnforcer(), nil, "ocigate.io/image")
	if w, err := trusted.Register(r2); err != nil || w.Profile != "debug" {
		t.Fatalf("trusted image annotation: %+v, %v", w, err)
	}
}

// A refusal after the profile is chosen carries the failure policy: the
// profile's; an annotation may close it; it may open it only when the
// operator trusts the key, else the claim is ignored (an event).
func TestFailurePolicyAnnotation(t *testing.T) {
	for _, tc := range []struct {
		name, image, annotation string
		trusted                 bool
		want                    string
		ignored                 bool
	}{
		{"closed profile", "", "", false, api.FailClosed, false},
		{"open profile", "registry.internal/open/x", "", false, api.FailOpen, false},
		{"annotation closes", "registry.internal/open/x", "closed", false, api.FailClosed, false},
		{"annotation may not open", "", "open", false, api.FailClosed, true},
		{"annotation opens, trusted", "", "open", true, api.FailOpen, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(t)
			enf := newFakeEnforcer()
			var keys []string
			if tc.trusted {
				keys = []string{"ocigate.io/failure-policy"}
			}
			a := trustAgent(t, h, enf, &fakeDescriber{info: describe.Info{Image: tc.image, Source: "podman"}}, keys...)
			enf.failSet = os.ErrDeadlineExceeded
			r := h.registration("c", 100, "/pods/c")
			r.Bundle = "/b"
			if tc.annotation != "" {
				r.Annotations = map[string]string{"ocigate.io/failure-policy": tc.annotation}
			}
			_, err := a.Register(r)
			var pe *api.PolicyError
			if !errors.As(err, &pe) || pe.FailurePolicy != tc.want {
				t.Fatalf("%v (%+v), want failure policy %s", err, pe, tc.want)
			}
			evs := claimEvents(t, a)
			if tc.ignored != (len(evs) == 1) || tc.ignored && (evs[0].Claims[0].Key != "ocigate.io/failure-policy" ||
				!strings.Contains(evs[0].Rule, "fail-open is the operator's choice")) {
				t.Fatalf("events %+v", evs)
			}
		})
	}
}

// A running container cannot be refused: adopted, or moved by a reload
// that no longer lets its annotation choose, it gets the profile its
// identity selects and the claim is reported as ignored.
func TestRunningContainersClaimsIgnored(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := trustAgent(t, h, enf, nil)
	c := h.running("adopted", 100, "/pods/adopted")
	c.Annotations = map[string]string{"ocigate.io/profile": "debug"}
	if res := a.Adopt([]running.Container{c}); res.Adopted != 1 {
		t.Fatalf("Adopt = %+v", res)
	}
	w, _ := a.Registry().Get("adopted")
	if w.Profile != "default" || !strings.Contains(w.ProfileReason, "ignored: annotation ocigate.io/profile=debug") {
		t.Fatalf("adopted %+v", w)
	}
	// audit is selectable now; a reload takes that away.
	r := h.registration("audited", 101, "/pods/audited")
	r.Annotations = map[string]string{"ocigate.io/profile": "audit"}
	if w, err := a.Register(r); err != nil || w.Profile != "audit" {
		t.Fatalf("Register: %+v, %v", w, err)
	}
	b, err := os.ReadFile(filepath.Join("testdata", "profiles", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "  selectableBy: {all: true}\n", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(filepath.Dir(path), "trust.yaml")
	if err := os.WriteFile(extra, []byte(trustProfiles), 0o600); err != nil {
		t.Fatal(err)
	}
	next, err := profiles.NewCatalogFiles(false, path, extra)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	if w, _ := a.Registry().Get("audited"); w.Profile != "default" || !strings.Contains(w.ProfileReason, "ignored") {
		t.Fatalf("after the reload %+v", w)
	}
	evs := claimEvents(t, a)
	if len(evs) != 2 || evs[0].Action != events.ClaimIgnored || evs[1].Action != events.ClaimIgnored || evs[1].Pod.Container.ID != "audited" {
		t.Fatalf("events %+v", evs)
	}
	if err := a.Reload(next); err != nil || len(claimEvents(t, a)) != 2 {
		t.Fatalf("a second reload reported again: %v, %d events", err, len(claimEvents(t, a)))
	}
}

// Refusals a hook left while no agent answered become ocigate_claim
// events reported by the hook, and the agent's own events reach the
// events file.
func TestHookReportsBecomeEvents(t *testing.T) {
	h := newFakeHost(t)
	dir := filepath.Join(t.TempDir(), "reports")
	at := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	if err := hookreport.Write(dir, hookreport.Report{Time: at, ContainerID: "c-down", Runtime: "runc",
		Claims: []hookreport.Claim{{Key: "ocigate.io/failure-policy", Value: "open"}}, Rule: "fail-open is the operator's choice"}); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Enforcer: newFakeEnforcer(), Resolver: h.resolver(), Catalog: testCatalog(t), HookReports: dir})
	if err != nil {
		t.Fatal(err)
	}
	out := runEventsInto(t, a)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out(), `"reported_by":"hook"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	line := out()
	if !strings.Contains(line, `{"ocigate_claim":{"pod":{"container":{"id":"c-down","image":{}}},"claims":[{"key":"ocigate.io/failure-policy","value":"open"}],`+
		`"action":"refused","rule":"fail-open is the operator's choice","reported_by":"hook"}`) || !strings.Contains(line, `"time":"2026-12-06T04:00:00Z"`) {
		t.Fatalf("events file: %s", line)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 || a.Status().Counters["claims_refused"] != 1 {
		t.Fatalf("reports left %v, counters %v", entries, a.Status().Counters)
	}
}

// runEventsInto runs a's RunEvents on a source that yields nothing until
// the test ends, and returns what the events file holds so far.
func runEventsInto(t *testing.T, a *Agent) func() string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.RunEvents(ctx, newFakeSource(), events.NewWriter(&out))
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out.String
}
