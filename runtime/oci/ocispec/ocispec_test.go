package ocispec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ReadBundleConfig decodes the whole spec, and refuses what the hook's
// reading of config.json refuses, with its messages (runtime/oci's
// tests hold the file checks and the messages).
func TestReadBundleConfig(t *testing.T) {
	for config, wantErr := range map[string]string{
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"hostname":"h","linux":{"cgroupsPath":"/c"}}`: "",
		``:                                "config.json is empty",
		`[]`:                              "is not a JSON object (starts with '[')",
		`{"ociVersion":`:                  "decoding bundle config " + "BUNDLE: unexpected end of JSON input",
		`{"ociVersion":"1.0.2"} x`:        "has trailing data after the JSON object (1 bytes",
		`{"ociVersion":"1.0.2","root":3}`: "decoding bundle config BUNDLE: json: cannot unmarshal number",
		`{"hostname":"x"}`:                `BUNDLE: field "ociVersion" is missing or empty`,
		`{"ociVersion":"1.0.2","root":{"path":` + "\"\\u0072ootfs\"}}": "",
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.json")
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		spec, err := ReadBundleConfig(dir)
		if wantErr == "" {
			if err != nil || spec.Version != "1.0.2" || spec.Root == nil || spec.Root.Path != "rootfs" {
				t.Errorf("%s: %+v, %v", config, spec, err)
			}
			continue
		}
		if want := strings.ReplaceAll(wantErr, "BUNDLE", path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to contain %q", config, err, want)
		}
	}
	if _, err := ReadBundleConfig(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bundle without config.json: %v, want fs.ErrNotExist", err)
	}
}
