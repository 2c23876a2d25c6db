package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/runtime/describe"
)

// imageCatalog: the test catalog plus "shop", chosen for images of
// localhost/shop/*.
func imageCatalog(t *testing.T) *profiles.Catalog {
	t.Helper()
	shop := filepath.Join(t.TempDir(), "shop.yaml")
	if err := os.WriteFile(shop, []byte(`apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata: {name: shop}
spec:
  match: {images: ["localhost/shop/*"]}
  mode: monitor
  policies: [{name: ocigate-audit}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := profiles.NewCatalogFiles(false, filepath.Join("testdata", "profiles", "agent.yaml"), shop)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type fakeDescriber struct {
	info    describe.Info
	err     error
	bundles []string
}

func (f *fakeDescriber) Describe(_ context.Context, bundle string) (describe.Info, error) {
	f.bundles = append(f.bundles, bundle)
	return f.info, f.err
}

func TestRegisterImageFromRuntime(t *testing.T) {
	h := newFakeHost(t)
	d := &fakeDescriber{info: describe.Info{Image: "localhost/shop/web:2", Name: "web-1", Source: "podman"}}
	a, err := New(Config{Enforcer: newFakeEnforcer(), Resolver: h.resolver(), Catalog: imageCatalog(t), Describer: d})
	if err != nil {
		t.Fatal(err)
	}
	r := h.registration("c1", 100, "/pods/c1")
	r.Bundle = "/var/lib/containers/storage/overlay-containers/c1/userdata"
	w, err := a.Register(r)
	if err != nil {
		t.Fatal(err)
	}
	if w.Image != "localhost/shop/web:2" || w.ImageSource != "podman" || w.Name != "web-1" {
		t.Fatalf("workload image %q from %q, name %q", w.Image, w.ImageSource, w.Name)
	}
	if w.Profile != "shop" || w.ProfileReason != `image localhost/shop/web:2 matched "localhost/shop/*"` {
		t.Fatalf("profile %q (%s), want shop by image", w.Profile, w.ProfileReason)
	}
	if len(d.bundles) != 1 || d.bundles[0] != r.Bundle {
		t.Fatalf("describer asked about %q", d.bundles)
	}

	// The CRI annotations are the container spec's claims: the runtime's
	// record names the image; the claimed image would choose a weaker
	// profile, so it is ignored (an event). Names and the pod come from
	// the annotations when the runtime has none (for display; the pod's
	// namespace is a claim, its source says so).
	r = h.registration("c2", 101, "/pods/c2")
	r.Bundle = "/b"
	r.Annotations = map[string]string{"io.kubernetes.cri.image-name": "docker.io/library/nginx:1", "io.kubernetes.cri.container-name": "nginx",
		"io.kubernetes.cri.sandbox-name": "web-pod", "io.kubernetes.cri.sandbox-namespace": "shop"}
	if w, err = a.Register(r); err != nil {
		t.Fatal(err)
	}
	if w.Image != "localhost/shop/web:2" || w.ImageSource != "podman" || w.Name != "nginx" || w.Pod != "web-pod" || w.PodNamespace != "shop" ||
		w.PodSource != "io.kubernetes.cri.sandbox-namespace" || w.Profile != "shop" ||
		!strings.Contains(w.ProfileReason, "; ignored: annotation io.kubernetes.cri.image-name=docker.io/library/nginx:1 chose profile \"default\"") {
		t.Fatalf("CRI workload %+v", w)
	}
	if len(d.bundles) != 2 || a.Status().Counters["claims_ignored"] != 1 {
		t.Fatalf("describer asked about %q; counters %v", d.bundles, a.Status().Counters)
	}
}

func TestRegisterRuntimeLookupFails(t *testing.T) {
	h := newFakeHost(t)
	d := &fakeDescriber{info: describe.Info{Source: "containerd"}, err: errors.New("containerd down")}
	a, err := New(Config{Enforcer: newFakeEnforcer(), Resolver: h.resolver(), Catalog: imageCatalog(t), Describer: d})
	if err != nil {
		t.Fatal(err)
	}
	r := h.registration("c1", 100, "/pods/c1")
	r.Bundle = "/run/containerd/io.containerd.runtime.v2.task/default/c1"
	w, err := a.Register(r)
	if err != nil {
		t.Fatalf("a failed lookup refused the container: %v", err)
	}
	if w.Image != "" || w.Profile != "default" || w.Runtime != "containerd" {
		t.Fatalf("workload %+v", w)
	}
	if n := a.Status().Counters["runtime_lookup_errors"]; n != 1 {
		t.Fatalf("runtime_lookup_errors = %d", n)
	}
	// Without a bundle there is nothing to ask.
	r = h.registration("c2", 101, "/pods/c2")
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	if len(d.bundles) != 1 {
		t.Fatalf("describer asked without a bundle: %q", d.bundles)
	}
}
