package docker

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	imageID   = "sha256:1d2430137164caabdc5b94403b9efe4aebca4b51286419895e4a00e449135963"
	repoDig   = "sha256:829a8a009064cde6d69f5ec28b7074dc3e4fabed497d43d14601b6199fd99cf4"
	container = "70e4b25ac05f2c1e19a6b8df72283ff5c19933e879c0e9a26fdf448033ef0ca6"
)

// dataRoot writes the shape dockerd 20.10 wrote for `docker run --name
// dk2 localhost/dk/busybox:1` (trimmed), plus a pulled reference.
func dataRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"containers/" + container + "/config.v2.json": `{"ID":"` + container + `","Image":"` + imageID + `","Name":"/dk2","Driver":"vfs",` +
			`"Config":{"Image":"localhost/dk/busybox:1","Labels":{"ocigate.io/profile":"x"}}}`,
		"image/vfs/repositories.json": `{"Repositories":{"localhost/dk/busybox":{"localhost/dk/busybox:1":"` + imageID + `",` +
			`"localhost/dk/busybox@` + repoDig + `":"` + imageID + `"},"other":{"other@sha256:ffff":"sha256:other"}}}`,
	}
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestLookup(t *testing.T) {
	root := dataRoot(t)
	m, err := Lookup(root, container)
	if err != nil {
		t.Fatal(err)
	}
	want := Meta{ID: container, Name: "dk2", Image: "localhost/dk/busybox:1", ImageID: imageID, Digests: []string{imageID, repoDig}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("Lookup = %+v\nwant %+v", m, want)
	}
	// Without repositories.json the ID is the digest.
	if err := os.Remove(filepath.Join(root, "image/vfs/repositories.json")); err != nil {
		t.Fatal(err)
	}
	if m, err := Lookup(root, container); err != nil || !reflect.DeepEqual(m.Digests, []string{imageID}) {
		t.Fatalf("without repositories.json: %+v, %v", m, err)
	}
}

func TestLookupErrors(t *testing.T) {
	root := dataRoot(t)
	for id, want := range map[string]string{
		"../x":    "not a container ID",
		"missing": "no such file",
	} {
		if _, err := Lookup(root, id); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Lookup(%q) = %v, want %q", id, err, want)
		}
	}
	other := filepath.Join(root, "containers", "abc")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "config.v2.json"), []byte(`{"ID":"def"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Lookup(root, "abc"); err == nil || !strings.Contains(err.Error(), `container "def"'s`) {
		t.Errorf("mismatched ID: %v", err)
	}
}
