package profiles

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var digestAA = "sha256:" + strings.Repeat("a", 64)

// trustCatalog is the built-ins and testdata/trust.
func trustCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := NewCatalog(true, "testdata/trust")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// annotations builds a map from key=value pairs.
func annotations(kv ...string) map[string]string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

// A container's ocigate.io/profile may name a profile at least as strong
// as its identity's, or one whose selectableBy admits its identity;
// anything else refuses it, naming the annotation and the rule.
func TestSelectProfileAnnotationTrust(t *testing.T) {
	c := trustCatalog(t)
	for _, tc := range []struct {
		name       string
		w          WorkloadInfo
		want       string // the profile, or "" when refused
		reasonHas  string // in the reason, or in the refusal's error
		refusalHas string
	}{
		{"the issue's case: monitor by annotation", WorkloadInfo{Image: "busybox", Annotations: annotations("ocigate.io/profile=debug-monitor")},
			"", "", `annotation ocigate.io/profile=debug-monitor chose profile "debug-monitor": profile "debug-monitor" is weaker than "reverse-shell", which the container's identity selects (default): mode monitor instead of enforce; and "debug-monitor" has no spec.selectableBy`},
		{"fail-open is weaker", WorkloadInfo{Annotations: annotations("ocigate.io/profile=fail-open")}, "", "", "failurePolicy open instead of closed"},
		{"no process events is weaker", WorkloadInfo{Annotations: annotations("ocigate.io/profile=quiet")}, "", "", "process events off"},
		{"fewer policies is weaker", WorkloadInfo{Annotations: annotations("ocigate.io/profile=fewer")}, "", "",
			`policy "reverse-shell" missing or changed at connect, sock_create, exec, dup, memfd, relay`},
		{"stronger is fine", WorkloadInfo{Annotations: annotations("ocigate.io/profile=stronger")}, "stronger", `at least as strong as "reverse-shell"`, ""},
		{"selectable for all", WorkloadInfo{Annotations: annotations("ocigate.io/profile=everyone-monitor")}, "everyone-monitor", "spec.selectableBy admits every workload (all: true)", ""},
		{"selectable by image", WorkloadInfo{Image: "registry.internal/tools/x:1", Annotations: annotations("ocigate.io/profile=debug-selectable")},
			"debug-selectable", `spec.selectableBy admits image registry.internal/tools/x:1 ("registry.internal/tools/*")`, ""},
		{"selectable by namespace", WorkloadInfo{Namespace: "debug", Annotations: annotations("ocigate.io/profile=debug-selectable")},
			"debug-selectable", `pod namespace debug ("debug")`, ""},
		{"selectable by namespace glob", WorkloadInfo{Namespace: "ci-42", Annotations: annotations("ocigate.io/profile=debug-selectable")},
			"debug-selectable", `pod namespace ci-42 ("ci-*")`, ""},
		{"another pod's namespace, claimed", WorkloadInfo{Namespace: "web", Annotations: annotations("ocigate.io/profile=debug-selectable", "io.kubernetes.cri.sandbox-namespace=debug")},
			"", "", `the spec.selectableBy of "debug-selectable" does not admit it (no image its runtime vouches for; pod namespace web); annotation io.kubernetes.cri.sandbox-namespace=debug is the container's own claim, not its runtime's`},
		{"another image's name, claimed", WorkloadInfo{Image: "busybox", Annotations: annotations("ocigate.io/profile=debug-selectable", "io.kubernetes.cri.image-name=registry.internal/tools/x:1")},
			"", "", "annotation io.kubernetes.cri.image-name=registry.internal/tools/x:1 is the container's own claim"},
		{"pinned: a tag is not enough", WorkloadInfo{Image: "registry.internal/tools/x:1", Annotations: annotations("ocigate.io/profile=pinned-monitor")},
			"", "", "does not admit it (image registry.internal/tools/x:1;"},
		{"pinned: the runtime's digest", WorkloadInfo{Image: "registry.internal/tools/x:1", ImageDigests: []string{digestAA}, Annotations: annotations("ocigate.io/profile=pinned-monitor")},
			"pinned-monitor", "spec.selectableBy admits image registry.internal/tools/x:1", ""},
		{"pinned: a claimed digest", WorkloadInfo{Image: "busybox", Annotations: annotations("ocigate.io/profile=pinned-monitor", "ocigate.io/image=registry.internal/tools/x@"+digestAA)},
			"", "", "is the container's own claim"},
		{"the operator trusts the annotation", WorkloadInfo{Annotations: annotations("ocigate.io/profile=debug-monitor"), TrustedKeys: map[string]bool{ProfileAnnotation: true}},
			"debug-monitor", "a key the agent's --trusted-annotations trusts", ""},
		{"the registering client's configuration", WorkloadInfo{Profile: "debug-monitor", Annotations: annotations("ocigate.io/profile=stronger")},
			"debug-monitor", "requested by the registering client: run-job --profile", ""},
		{"the identity's own profile", WorkloadInfo{Image: "registry.internal/debug/tool:1", Annotations: annotations("ocigate.io/profile=debug-monitor")},
			"debug-monitor", "the profile its identity selects too", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := Select(c, tc.w)
			if tc.want == "" {
				var ce *ClaimError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.refusalHas) {
					t.Fatalf("got %+v, %v; want a ClaimError with %q", sel, err, tc.refusalHas)
				}
				if ce.Base == nil || ce.Base.Name != "reverse-shell" || ce.Profile != "reverse-shell" || !strings.HasPrefix(err.Error(), "refused: annotation ocigate.io/profile=") {
					t.Errorf("ClaimError %+v", ce)
				}
				return
			}
			if err != nil || sel.Profile.Name != tc.want || !strings.Contains(sel.Reason, tc.reasonHas) || sel.Ignored != nil {
				t.Errorf("got %+v, %v; want %s with %q", sel, err, tc.want, tc.reasonHas)
			}
		})
	}
}

// A container's other claims — an image annotation, annotation matches,
// a runtime read from annotations — may choose a stronger profile; a
// weaker one is ignored: the identity's profile stands, and Ignored
// names the claims and the rule.
func TestSelectClaimsIgnored(t *testing.T) {
	c := trustCatalog(t)
	for _, tc := range []struct {
		name      string
		w         WorkloadInfo
		want      string
		ignored   string // the claims, "" when none are ignored
		reasonHas string
	}{
		{"the runtime's image selects", WorkloadInfo{Image: "registry.internal/debug/tool:1"}, "debug-monitor", "", "matched"},
		{"another image's name from the CRI annotation", WorkloadInfo{Image: "busybox", Annotations: annotations("io.kubernetes.cri.image-name=registry.internal/debug/tool:1")},
			"reverse-shell", "io.kubernetes.cri.image-name=registry.internal/debug/tool:1", "default"},
		{"an image claim without a runtime image", WorkloadInfo{Annotations: annotations("ocigate.io/image=registry.internal/debug/tool:1")},
			"reverse-shell", "ocigate.io/image=registry.internal/debug/tool:1", "default"},
		{"the same image as the runtime's", WorkloadInfo{Image: "registry.internal/debug/tool:1", Annotations: annotations("io.kubernetes.cri.image-name=registry.internal/debug/tool:1")},
			"debug-monitor", "", "matched"},
		{"a trusted image annotation", WorkloadInfo{Image: "registry.internal/debug/tool:1", Annotations: annotations("ocigate.io/image=registry.internal/debug/tool:1"), TrustedKeys: map[string]bool{"ocigate.io/image": true}},
			"debug-monitor", "", "matched"},
		{"an annotation match", WorkloadInfo{Annotations: annotations("team=debug")}, "reverse-shell", "team=debug", "default"},
		{"a trusted annotation match", WorkloadInfo{Annotations: annotations("team=debug"), TrustedKeys: map[string]bool{"team": true}}, "team-monitor", "", "annotation team=debug"},
		{"a runtime named by annotation", WorkloadInfo{Runtime: "podman", RuntimeClaim: "io.container.manager", Annotations: annotations("io.container.manager=libpod")},
			"reverse-shell", "io.container.manager=libpod", "default"},
		{"a runtime the hook knows", WorkloadInfo{Runtime: "podman"}, "podman-monitor", "", "runtime podman"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := Select(c, tc.w)
			if err != nil || sel.Profile.Name != tc.want || !strings.Contains(sel.Reason, tc.reasonHas) {
				t.Fatalf("got %+v, %v; want %s with %q", sel, err, tc.want, tc.reasonHas)
			}
			if tc.ignored == "" {
				if sel.Ignored != nil {
					t.Errorf("ignored %v", sel.Ignored)
				}
				return
			}
			if sel.Ignored == nil || !strings.Contains(sel.Ignored.Error(), "annotation "+tc.ignored) || sel.Ignored.Profile != tc.want ||
				!strings.Contains(sel.Ignored.Rule, "is weaker than") {
				t.Errorf("ignored %+v, want the claim %s", sel.Ignored, tc.ignored)
			}
		})
	}
}

// Without a default profile, a claim may choose only a profile that
// admits the container; otherwise it is refused.
func TestSelectClaimWithoutDefault(t *testing.T) {
	c, err := NewCatalog(false, "testdata/trust")
	if err == nil {
		t.Fatal("the trust profiles reference built-in policies; expected an error without them")
	}
	c = trustCatalog(t)
	c.def = nil
	_, err = Select(c, WorkloadInfo{Annotations: annotations("ocigate.io/image=registry.internal/debug/tool:1")})
	if err == nil || !strings.Contains(err.Error(), "no profile matches") || !strings.Contains(err.Error(), "chose profile \"debug-monitor\"") {
		t.Errorf("got %v", err)
	}
	sel, err := Select(c, WorkloadInfo{Annotations: annotations("ocigate.io/profile=everyone-monitor")})
	if err != nil || sel.Profile.Name != "everyone-monitor" {
		t.Errorf("got %+v, %v", sel, err)
	}
}

// Weaknesses compares policies by their compiled selectors: a renamed
// copy counts, a reordered or changed one does not, extra policies only
// add.
func TestWeaknesses(t *testing.T) {
	sel := func(policy string, group int, action Action, daddr string) Selector {
		return Selector{Policy: policy, Call: "tcp_connect", Group: group, Action: action,
			Daddr: AddrMatch{Prefixes: []netip.Prefix{netip.MustParsePrefix(daddr)}}}
	}
	base := &Profile{Name: "base", Mode: ModeEnforce}
	base.Points[PointConnect] = []Selector{sel("deny", 0, ActionOverride, "10.0.0.0/8"), sel("deny", 0, ActionPost, "0.0.0.0/0")}
	for _, tc := range []struct {
		name string
		sels []Selector
		mode Mode
		want string
	}{
		{"same", base.Points[PointConnect], ModeEnforce, ""},
		{"renamed copy, other group, extra policy first", []Selector{sel("extra", 0, ActionSigkill, "1.2.3.4/32"),
			sel("copy", 1, ActionOverride, "10.0.0.0/8"), sel("copy", 1, ActionPost, "0.0.0.0/0")}, ModeEnforce, ""},
		{"reordered", []Selector{sel("deny", 0, ActionPost, "0.0.0.0/0"), sel("deny", 0, ActionOverride, "10.0.0.0/8")}, ModeEnforce,
			`policy "deny" missing or changed at connect`},
		{"changed", []Selector{sel("deny", 0, ActionOverride, "10.0.0.0/16"), sel("deny", 0, ActionPost, "0.0.0.0/0")}, ModeEnforce,
			`policy "deny" missing or changed at connect`},
		{"monitor", base.Points[PointConnect], ModeMonitor, "mode monitor instead of enforce"},
	} {
		p := &Profile{Name: "p", Mode: tc.mode}
		p.Points[PointConnect] = tc.sels
		got := strings.Join(Weaknesses(base, p), "; ")
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if w := Weaknesses(&Profile{Mode: ModeMonitor}, &Profile{Mode: ModeMonitor}); len(w) != 0 {
		t.Errorf("monitor against monitor: %v", w)
	}
	// The first signal of an operation is sent: another policy's signal
	// may not come where base sends one; its refusals may.
	kill := sel("kill", 0, ActionSignal, "10.0.0.0/8")
	kill.Signal = 9
	signalling := &Profile{Name: "signalling", Mode: ModeEnforce}
	signalling.Points[PointConnect] = []Selector{kill}
	usr1 := sel("usr1", 0, ActionSignal, "0.0.0.0/0")
	usr1.Signal = 10
	kill.Group = 1
	p := &Profile{Name: "p", Mode: ModeEnforce}
	p.Points[PointConnect] = []Selector{usr1, kill}
	if got := strings.Join(Weaknesses(signalling, p), "; "); got != `at connect another policy's signal may come before the one "signalling" sends` {
		t.Errorf("preempted signal: %q", got)
	}
	p.Points[PointConnect][0] = sel("deny", 0, ActionOverride, "0.0.0.0/0")
	if w := Weaknesses(signalling, p); len(w) != 0 {
		t.Errorf("a refusal beside a signal: %v", w)
	}
}

// SelectableBy says who may choose a profile, for profiles show.
func TestCatalogSelectableBy(t *testing.T) {
	c := trustCatalog(t)
	for name, want := range map[string]string{
		"debug-monitor":    "by containers whose own profile it is at least as strong as",
		"everyone-monitor": "by every container (spec.selectableBy.all)",
		"debug-selectable": "by containers whose own profile it is at least as strong as; and by images registry.internal/tools/*; pod namespaces debug, ci-* (spec.selectableBy)",
		"nope":             "",
	} {
		if got := c.SelectableBy(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}
