package podman

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// containersJSON is the shape podman 4.3 wrote for `podman run --name
// explore1 localhost/ocigate-test/busybox:1` (one --rootfs container
// besides, which has no image).
const containersJSON = `[{"id":"3cb45434a8af","names":["explore1"],"image":"d865d9bb2b55","layer":"666eca7a",` +
	`"metadata":"{\"image-name\":\"localhost/ocigate-test/busybox:1\",\"image-id\":\"d865d9bb2b55\",\"name\":\"explore1\",\"created-at\":1795447453}",` +
	`"created":"2026-11-23T15:24:13.104105042Z","flags":{"MountLabel":"","ProcessLabel":""}},` +
	`{"id":"77aa","names":["rootfs-only"],"image":"","layer":"","metadata":"{\"name\":\"rootfs-only\"}"}]`

func store(t *testing.T, content string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "storage", "overlay-containers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "containers.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	images := filepath.Join(filepath.Dir(dir), "overlay-images")
	if err := os.MkdirAll(images, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(images, "images.json"), []byte(imagesJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// imagesJSON is the shape of podman 4.3's overlay-images/images.json for
// an imported image (shortened).
const imagesJSON = `[{"id":"d865d9bb2b55","digest":"sha256:829a8a00","names":["localhost/ocigate-test/busybox:1"],` +
	`"layer":"84240644","big-data-digests":{"manifest":"sha256:829a8a00"}}]`

func TestFromBundle(t *testing.T) {
	dir := store(t, containersJSON)
	m, ok, err := FromBundle(filepath.Join(dir, "3cb45434a8af", "userdata"))
	if err != nil || !ok {
		t.Fatalf("FromBundle: %v, %v", ok, err)
	}
	if want := (Meta{ID: "3cb45434a8af", Name: "explore1", Image: "localhost/ocigate-test/busybox:1", ImageID: "d865d9bb2b55",
		Digests: []string{"sha256:d865d9bb2b55", "sha256:829a8a00"}}); !reflect.DeepEqual(m, want) {
		t.Fatalf("FromBundle = %+v, want %+v", m, want)
	}
	m, _, err = FromBundle(filepath.Join(dir, "77aa", "userdata"))
	if err != nil || m.Image != "" || m.Name != "rootfs-only" {
		t.Fatalf("rootfs container: %+v, %v", m, err)
	}
	if _, ok, err := FromBundle("/run/containerd/io.containerd.runtime.v2.task/default/web"); ok || err != nil {
		t.Fatalf("containerd bundle: %v, %v", ok, err)
	}
	if _, ok, err := FromBundle(filepath.Join(dir, "nope", "userdata")); !ok || err == nil || !strings.Contains(err.Error(), "not in") {
		t.Fatalf("unknown container: %v, %v", ok, err)
	}
}

// Without a readable images.json the image ID is still a digest.
func TestDigestsWithoutImagesJSON(t *testing.T) {
	dir := store(t, containersJSON)
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "overlay-images", "images.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, ok, err := FromBundle(filepath.Join(dir, "3cb45434a8af", "userdata"))
	if err != nil || !ok || !reflect.DeepEqual(m.Digests, []string{"sha256:d865d9bb2b55"}) {
		t.Fatalf("FromBundle = %+v, %v, %v", m, ok, err)
	}
	if _, err := ImageDigests(filepath.Join(filepath.Dir(dir), "overlay-images", "images.json"), "x"); err == nil {
		t.Fatal("bad images.json accepted")
	}
}

func TestLookupErrors(t *testing.T) {
	for name, content := range map[string]string{
		"not json":     "{",
		"bad metadata": `[{"id":"a","metadata":"{"}]`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := store(t, content)
			if _, _, err := FromBundle(filepath.Join(dir, "a", "userdata")); err == nil || !strings.Contains(err.Error(), "containers.json") {
				t.Fatalf("err = %v, want one naming containers.json", err)
			}
		})
	}
	if _, err := Lookup(filepath.Join(t.TempDir(), "containers.json"), "a"); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestBundleRef(t *testing.T) {
	tests := []struct {
		bundle, file, id string
		ok               bool
	}{
		{"/var/lib/containers/storage/overlay-containers/abc/userdata", "/var/lib/containers/storage/overlay-containers/containers.json", "abc", true},
		{"/srv/store/vfs-containers/abc/userdata/", "/srv/store/vfs-containers/containers.json", "abc", true},
		{"/var/lib/containers/storage/overlay-containers/abc", "", "", false},
		{"/tmp/bundle/userdata", "", "", false},
	}
	for _, tt := range tests {
		file, id, ok := BundleRef(tt.bundle)
		if file != tt.file || id != tt.id || ok != tt.ok {
			t.Errorf("BundleRef(%q) = %q, %q, %v", tt.bundle, file, id, ok)
		}
	}
}
