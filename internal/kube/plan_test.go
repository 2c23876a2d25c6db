package kube

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ocigate/ocigate/internal/seeds"
	"github.com/ocigate/ocigate/internal/testenv/policyfixture"
	"github.com/ocigate/ocigate/profiles"
)

func object(t *testing.T, src string) *Object {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(src), &m); err != nil {
		t.Fatal(err)
	}
	o, err := FromMap(m)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

const connectSpec = `
spec:
` + policyfixture.DenyLoopback2

// A namespaced policy applies to the selected pods of its namespace
// only; a cluster-wide one to every pod its podSelector selects; pods
// with the same policies share one generated profile.
func TestBuildSelectsByNamespaceAndLabels(t *testing.T) {
	nsPol := object(t, "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicyNamespaced\nmetadata: {name: deny, namespace: a}"+connectSpec+
		"  podSelector: {matchLabels: {app: web}}\n")
	clPol := object(t, "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: everywhere}"+connectSpec)
	pods := []Pod{
		{Namespace: "a", Name: "web1", UID: "u1", Labels: map[string]string{"app": "web"}},
		{Namespace: "a", Name: "web2", UID: "u2", Labels: map[string]string{"app": "web"}},
		{Namespace: "a", Name: "db", UID: "u3", Labels: map[string]string{"app": "db"}},
		{Namespace: "b", Name: "web", UID: "u4", Labels: map[string]string{"app": "web"}},
		{Namespace: "kube-system", Name: "dns", UID: "u5"},
	}
	p, err := Build([]*Object{nsPol, clPol}, pods, map[string]bool{"kube-system": true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a/web1": "everywhere,a.deny", "a/web2": "everywhere,a.deny", "a/db": "everywhere", "b/web": "everywhere"}
	for pod, w := range want {
		if got := strings.Join(p.Applied[pod], ","); got != w {
			t.Errorf("%s: policies %q, want %q", pod, got, w)
		}
	}
	if _, ok := p.Applied["kube-system/dns"]; ok {
		t.Errorf("exempt namespace got policies: %v", p.Applied["kube-system/dns"])
	}
	if len(p.Profiles) != 2 {
		t.Errorf("generated profiles %v, want 2 (one per set of policies)", p.Profiles)
	}
	file := filepath.Join(t.TempDir(), "k8s.yaml")
	if err := os.WriteFile(file, p.File, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := profiles.NewCatalogFiles(true, file); err != nil {
		t.Fatalf("the agent would refuse the plan: %v\n%s", err, p.File)
	}
}

// Each seed policy, applied unchanged, is accepted; a container
// selector on a field other than name and an unknown selector field are
// refused naming the field.
func TestValidatorSeedsAndRefusals(t *testing.T) {
	v, err := NewValidator(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, name := range seeds.Names() {
		data, err := fs.ReadFile(seeds.FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		o := object(t, string(data))
		if err := v.Check(o, nil); err != nil {
			t.Errorf("seed %s refused: %v", name, err)
		}
	}
	for _, tc := range []struct{ src, field string }{
		{"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: x}" + connectSpec + "  containerSelector: {matchLabels: {repo: c}}\n", "spec.containerSelector"},
		{"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: x}" + connectSpec + "  podSelector: {matchLabel: {app: c}}\n", "spec.podSelector"},
	} {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(tc.src), &m); err != nil {
			t.Fatal(err)
		}
		if _, err := FromMap(m); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("error %v, want one naming %s", err, tc.field)
		}
	}
	bad := object(t, "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: bad}\nspec:\n  kprobes:\n  - call: tcp_connect\n    selectors:\n    - matchActions: [{action: Nope}]\n")
	if err := v.Check(bad, nil); err == nil || !strings.Contains(err.Error(), "spec.kprobes[0]") {
		t.Errorf("bad action: error %v, want one naming spec.kprobes[0]", err)
	}
}

// A containerSelector (Tetragon's: the container field name) binds its
// policy to the containers of that name in the selected pods: each
// container name gets its own generated profile, which the agent loads
// and selects by the pod's UID and the container's name.
func TestBuildContainerSelector(t *testing.T) {
	sidecar := object(t, "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: sidecar}"+connectSpec+
		"  containerSelector: {matchExpressions: [{key: name, operator: In, values: [proxy]}]}\n")
	everyone := object(t, "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: everyone}"+connectSpec+
		"  containerSelector: {}\n")
	pods := []Pod{
		{Namespace: "a", Name: "web", UID: "u1", Containers: []string{"app", "proxy"}},
		{Namespace: "a", Name: "api", UID: "u2", Containers: []string{"proxy"}},
	}
	p, err := Build([]*Object{sidecar, everyone}, pods, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for name, members := range p.Profiles {
		for _, m := range members {
			got[m] = name
		}
	}
	if len(got) != 3 || got["a/web/proxy"] != got["a/api/proxy"] || got["a/web/app"] == got["a/web/proxy"] {
		t.Fatalf("profiles %v: want a/web/app alone, a/web/proxy with a/api/proxy", p.Profiles)
	}
	if a := strings.Join(p.Applied["a/web"], ","); a != "everyone,sidecar" {
		t.Errorf("a/web: policies %q", a)
	}
	file := filepath.Join(t.TempDir(), "k8s.yaml")
	if err := os.WriteFile(file, p.File, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := profiles.NewCatalogFiles(true, file)
	if err != nil {
		t.Fatalf("the agent would refuse the plan: %v\n%s", err, p.File)
	}
	trusted := map[string]bool{SandboxUIDAnnotation: true, profiles.ContainerNameAnnotation: true}
	for member, want := range map[string]string{"u1/app": got["a/web/app"], "u1/proxy": got["a/web/proxy"], "u2/proxy": got["a/api/proxy"],
		"u2/app": "reverse-shell"} {
		uid, name, _ := strings.Cut(member, "/")
		sel, err := profiles.Select(c, profiles.WorkloadInfo{Annotations: map[string]string{SandboxUIDAnnotation: uid,
			profiles.ContainerNameAnnotation: name}, TrustedKeys: trusted})
		if err != nil || sel.Profile.Name != want {
			t.Errorf("container %s: profile %v (%v), want %s", member, sel, err, want)
		}
	}
}
