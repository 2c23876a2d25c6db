package profiles

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/ocigate/ocigate/profiles/policy"
)

// syntheticPolicy is a policy with n tcp_connect selectors, built without
// YAML (a kprobe takes at most 5 selectors in YAML).
func syntheticPolicy(name string, n int) *policy.TracingPolicy {
	k := policy.Kprobe{Pos: policy.Pos{File: name + ".yaml", Line: 7}, Call: "tcp_connect",
		Args: []policy.Arg{{Index: 0, Type: "sock"}}}
	for i := 0; i < n; i++ {
		pos := policy.Pos{File: name + ".yaml", Line: 10 + i}
		k.Selectors = append(k.Selectors, policy.Selector{Pos: pos, Actions: []policy.Action{{Pos: pos, Action: "Post"}}, ImplicitPost: true})
	}
	return &policy.TracingPolicy{Pos: policy.Pos{File: name + ".yaml", Line: 2}, Name: name, Kprobes: []policy.Kprobe{k}}
}

func syntheticProfile(sizes ...int) (*policy.WorkloadProfile, func(string) (*policy.TracingPolicy, bool)) {
	wp := &policy.WorkloadProfile{Pos: policy.Pos{File: "w.yaml", Line: 1}, Name: "w", Mode: "enforce", FailurePolicy: "closed"}
	pols := map[string]*policy.TracingPolicy{}
	for i, n := range sizes {
		name := fmt.Sprintf("p%d", i)
		pols[name] = syntheticPolicy(name, n)
		wp.Policies = append(wp.Policies, policy.PolicyRef{Pos: policy.Pos{File: "w.yaml", Line: 10 + i}, Name: name})
	}
	return wp, func(n string) (*policy.TracingPolicy, bool) { p, ok := pols[n]; return p, ok }
}

func TestCompileLimits(t *testing.T) {
	wp, lookup := syntheticProfile(1, 1, 1, 1, 1, 1, 1, 1, 1)
	_, err := Compile(wp, lookup)
	want := `w.yaml:18: spec.policies[8]: profile "w": policy "p8" call tcp_connect would be the 9th policy call with selectors at connect: at most 8 per point`
	if err == nil || err.Error() != want {
		t.Errorf("groups: got %v\nwant %s", err, want)
	}
	wp, lookup = syntheticProfile(5, 5, 5, 2)
	_, err = Compile(wp, lookup)
	want = `w.yaml:13: spec.policies[3]: profile "w": policy "p3" brings connect to 17 selectors: at most 16 per point, all policies together`
	if err == nil || err.Error() != want {
		t.Errorf("selectors: got %v\nwant %s", err, want)
	}
	wp, lookup = syntheticProfile(5, 5, 5, 1)
	p, err := Compile(wp, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Points[PointConnect]); n != MaxSelectors || p.Points[PointConnect][15].Group != 3 {
		t.Errorf("%d selectors, last group %d", n, p.Points[PointConnect][n-1].Group)
	}
	wp.Policies = append(wp.Policies, policy.PolicyRef{Pos: policy.Pos{File: "w.yaml", Line: 30}, Name: "nope"})
	_, err = Compile(wp, lookup)
	want = `w.yaml:30: spec.policies[4].name: unknown TracingPolicy "nope"`
	if err == nil || err.Error() != want {
		t.Errorf("unknown: got %v\nwant %s", err, want)
	}
}

const seedProfiles = `apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata:
  name: web
spec:
  match:
    images: ["nginx:*"]
  mode: monitor
  failurePolicy: open
  policies:
  - name: enforce-no-reverse-shell
  - name: detect-bind-shell
  - name: detect-reverse-shell-all-protocols
  - inline:
      metadata:
        name: inline-close
      spec:
        kprobes:
        - call: tcp_close
          args:
          - index: 0
            type: sock
          selectors:
          - matchArgs:
            - index: 0
              operator: Family
              values: ["99"]
`

func TestCompileSeedProfile(t *testing.T) {
	seeds := map[string]*policy.TracingPolicy{}
	for _, n := range []string{"01", "02", "03", "04", "05", "06", "07"} {
		tp := seedPolicy(t, n)
		seeds[tp.Name] = tp
	}
	lookup := func(n string) (*policy.TracingPolicy, bool) { tp, ok := seeds[n]; return tp, ok }
	docs, err := policy.Parse("p.yaml", []byte(seedProfiles))
	if err != nil {
		t.Fatal(err)
	}
	wp := docs[0].Profile
	_, err = Compile(wp, lookup)
	want := `p.yaml:25: spec.policies[3].inline.spec.kprobes[0].selectors[0].matchArgs[0].values[0]: family 99 cannot be matched: the kernel side matches family 0-31`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	wp.Policies = wp.Policies[:3]
	p, err := Compile(wp, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "web" || p.Mode != ModeMonitor || !p.FailOpen || p.NoProcessEvents {
		t.Errorf("profile %+v", p)
	}
	wp.NoProcessEvents = true
	if p, err := Compile(wp, lookup); err != nil || !p.NoProcessEvents {
		t.Errorf("spec.processEvents: false not compiled: %v", err)
	}
	var got []string
	for pt, sels := range p.Points {
		for _, s := range sels {
			got = append(got, fmt.Sprintf("%s %s %d %s", Point(pt), s.Policy, s.Group, s.Call))
		}
	}
	wantSels := []string{
		"connect enforce-no-reverse-shell 0 tcp_connect",
		"connect detect-reverse-shell-all-protocols 1 security_socket_connect",
		"sock_create detect-bind-shell 0 sk_alloc",
		"listen detect-bind-shell 0 inet_csk_listen_start",
	}
	if !reflect.DeepEqual(got, wantSels) {
		t.Errorf("selectors\n got  %q\n want %q", got, wantSels)
	}
}
