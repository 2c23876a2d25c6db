package oci

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const minimalConfig = `{"ociVersion":"1.0.2-dev","process":{"args":["/bin/sh","-c","true"],"cwd":"/"},"root":{"path":"rootfs"},"hostname":"web-1","annotations":{"a":"spec"},"linux":{"cgroupsPath":"/kubepods/pod1/c1"}}`

// writeBundle creates a bundle directory whose config.json holds config.
func writeBundle(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// bundleCase is a bundle readBundleView reads, or fails on.
type bundleCase struct {
	name    string
	setup   func(t *testing.T) string // returns the bundle path
	wantErr string                    // substring; "" means success
	errIs   error
}

// bundleFileCases are about the bundle and its config.json as a file.
var bundleFileCases = []bundleCase{
	{name: "valid", setup: func(t *testing.T) string { return writeBundle(t, minimalConfig) }},
	{
		name: "symlink to regular file",
		setup: func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "real.json"), []byte(minimalConfig), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("real.json", filepath.Join(dir, "config.json")); err != nil {
				t.Fatal(err)
			}
			return dir
		},
	},
	{
		name:    "missing config.json",
		setup:   func(t *testing.T) string { return t.TempDir() },
		wantErr: "config.json: no such file or directory",
		errIs:   fs.ErrNotExist,
	},
	{
		name:    "missing bundle",
		setup:   func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") },
		wantErr: "nope/config.json",
		errIs:   fs.ErrNotExist,
	},
	{name: "empty bundle path", setup: func(t *testing.T) string { return "" }, wantErr: "bundle path is empty"},
	{
		name: "config.json is a directory",
		setup: func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "config.json"), 0o700); err != nil {
				t.Fatal(err)
			}
			return dir
		},
		wantErr: "config.json is not a regular file",
	},
	{
		name: "config.json is a fifo",
		setup: func(t *testing.T) string {
			dir := t.TempDir()
			if err := syscall.Mkfifo(filepath.Join(dir, "config.json"), 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			return dir
		},
		wantErr: "config.json is not a regular file",
	},
	{
		name: "too big",
		setup: func(t *testing.T) string {
			dir := writeBundle(t, minimalConfig)
			// Sparse: costs no disk space.
			if err := os.Truncate(filepath.Join(dir, "config.json"), MaxConfigSize+1); err != nil {
				t.Fatal(err)
			}
			return dir
		},
		wantErr: "exceeds 16777216 bytes",
	},
}

// bundleContentCases are about what config.json holds.
var bundleContentCases = []bundleCase{
	{name: "empty file", setup: func(t *testing.T) string { return writeBundle(t, "") }, wantErr: "config.json is empty"},
	{name: "invalid json", setup: func(t *testing.T) string { return writeBundle(t, `{"ociVersion":`) }, wantErr: "decoding bundle config"},
	{name: "not an object", setup: func(t *testing.T) string { return writeBundle(t, `"1.0.2"`) }, wantErr: "not a JSON object"},
	{name: "wrong type", setup: func(t *testing.T) string { return writeBundle(t, `{"ociVersion":"1.0.2","hostname":3}`) }, wantErr: "hostname"},
	{name: "trailing garbage", setup: func(t *testing.T) string { return writeBundle(t, minimalConfig+"}") }, wantErr: "trailing data"},
	{
		name:    "missing ociVersion",
		setup:   func(t *testing.T) string { return writeBundle(t, `{"hostname":"x"}`) },
		wantErr: `field "ociVersion" is missing or empty`,
	},
}

func TestReadBundleViewFile(t *testing.T) { checkReadBundleView(t, bundleFileCases) }

func TestReadBundleViewContent(t *testing.T) { checkReadBundleView(t, bundleContentCases) }

// checkReadBundleView reads each case's bundle: minimalConfig, or the
// error wanted, naming the file.
func checkReadBundleView(t *testing.T, cases []bundleCase) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			bundle := tt.setup(t)
			spec, err := readBundleView(bundle)
			if tt.wantErr != "" {
				wantBundleError(t, bundle, err, tt)
				return
			}
			if err != nil {
				t.Fatalf("readBundleView: %v", err)
			}
			if spec.Version != "1.0.2-dev" || spec.Hostname != "web-1" || spec.Linux == nil ||
				spec.Linux.CgroupsPath != "/kubepods/pod1/c1" || spec.Process == nil || len(spec.Process.Args) != 3 {
				t.Fatalf("readBundleView = %+v", spec)
			}
		})
	}
}

// wantBundleError checks readBundleView's error on bundle against tt.
func wantBundleError(t *testing.T, bundle string, err error, tt bundleCase) {
	t.Helper()
	if err == nil {
		t.Fatalf("readBundleView succeeded, want error containing %q", tt.wantErr)
	}
	if !strings.Contains(err.Error(), tt.wantErr) {
		t.Fatalf("readBundleView error = %q, want it to contain %q", err, tt.wantErr)
	}
	if bundle != "" && !strings.Contains(err.Error(), filepath.Join(bundle, "config.json")) {
		t.Fatalf("readBundleView error = %q, want it to name the file", err)
	}
	if tt.errIs != nil && !errors.Is(err, tt.errIs) {
		t.Fatalf("readBundleView error = %v, want errors.Is %v", err, tt.errIs)
	}
}
