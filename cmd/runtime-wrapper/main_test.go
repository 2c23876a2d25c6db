package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// asWrapper is the variable that, set, makes the test binary the wrapper.
const asWrapper = "OCIGATE_RUNC_WRAPPER_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asWrapper) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// fakeRunc records its argv and the bundle config it was given, and exits 3.
const fakeRunc = `#!/bin/sh
printf '%s\n' "$@" > "$FAKE_OUT/argv"
cp "$FAKE_BUNDLE/config.json" "$FAKE_OUT/config.json"
exit 3
`

type wrapperRun struct {
	code   int
	stderr string
	argv   []string // what runc got, nil if it did not run
	config []byte   // the config.json runc saw
}

func runWrapper(t *testing.T, dir, bundle string, args ...string) wrapperRun {
	t.Helper()
	out := t.TempDir()
	runc := filepath.Join(t.TempDir(), "runc")
	if err := os.WriteFile(runc, []byte(fakeRunc), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], append([]string{"--ocigate-runc=" + runc}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), asWrapper+"=1", "FAKE_OUT="+out, "FAKE_BUNDLE="+bundle)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	r := wrapperRun{code: cmd.ProcessState.ExitCode(), stderr: stderr.String()}
	if b, err := os.ReadFile(filepath.Join(out, "argv")); err == nil {
		r.argv = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		r.config, _ = os.ReadFile(filepath.Join(out, "config.json"))
	}
	return r
}

const bundleConfig = `{
	"ociVersion": "1.0.2",
	"process": {"args": ["/bin/true"], "cwd": "/"},
	"root": {"path": "rootfs"},
	"hooks": {"prestart": [{"path": "/usr/bin/docker-proxy-setkey"}]}
}
`

func writeBundle(t *testing.T, config string, mode os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

func specOf(t *testing.T, b []byte) *specs.Spec {
	t.Helper()
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("config runc saw is not a spec: %v\n%s", err, b)
	}
	return &s
}

func TestWrapperCreateAddsHooks(t *testing.T) {
	bundle := writeBundle(t, bundleConfig, 0o600)
	r := runWrapper(t, t.TempDir(), bundle, "--ocigate-hook=/opt/ocigate/ocigate-hook", "--ocigate-socket", "/run/x.sock",
		"--root", "/run/runc", "create", "--bundle", bundle, "--pid-file", "p", "c1")
	if r.code != 3 {
		t.Fatalf("exit %d, want runc's 3; stderr %s", r.code, r.stderr)
	}
	if want := []string{"--root", "/run/runc", "create", "--bundle", bundle, "--pid-file", "p", "c1"}; !reflect.DeepEqual(r.argv, want) {
		t.Errorf("runc argv %q, want %q", r.argv, want)
	}
	s := specOf(t, r.config)
	if s.Hooks == nil || len(s.Hooks.CreateRuntime) != 1 || len(s.Hooks.Poststop) != 1 || len(s.Hooks.Prestart) != 1 {
		t.Fatalf("hooks %+v", s.Hooks)
	}
	want := []string{"ocigate-hook", "--socket", "/run/x.sock", "--runtime", "docker", "createRuntime"}
	if h := s.Hooks.CreateRuntime[0]; h.Path != "/opt/ocigate/ocigate-hook" || !reflect.DeepEqual(h.Args, want) {
		t.Errorf("createRuntime hook %+v, want args %q", h, want)
	}
	if fi, err := os.Stat(filepath.Join(bundle, "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode: %v %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(bundle)
	if len(entries) != 1 {
		t.Errorf("bundle holds %d files, want only config.json", len(entries))
	}

	// Again (runc restarting the same bundle): nothing is added twice.
	before, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	r = runWrapper(t, t.TempDir(), bundle, "--ocigate-hook=/opt/ocigate/ocigate-hook", "--ocigate-socket", "/run/x.sock",
		"run", "-b", bundle, "c1")
	if r.code != 3 || !bytes.Equal(r.config, before) {
		t.Errorf("second run changed the config (exit %d):\n%s\n%s", r.code, before, r.config)
	}
}

func TestWrapperBundleIsCurrentDirectory(t *testing.T) {
	bundle := writeBundle(t, bundleConfig, 0o644)
	r := runWrapper(t, bundle, bundle, "--ocigate-hook=/h/ocigate-hook", "--ocigate-runtime-name=", "run", "c2")
	if r.code != 3 {
		t.Fatalf("exit %d; stderr %s", r.code, r.stderr)
	}
	s := specOf(t, r.config)
	if len(s.Hooks.Poststop) != 1 || !reflect.DeepEqual(s.Hooks.Poststop[0].Args, []string{"ocigate-hook", "poststop"}) {
		t.Errorf("poststop %+v", s.Hooks.Poststop)
	}
}

func TestWrapperOtherCommandsUntouched(t *testing.T) {
	bundle := writeBundle(t, bundleConfig, 0o644)
	r := runWrapper(t, bundle, bundle, "--ocigate-hook=/h/ocigate-hook", "--debug", "delete", "--force", "c3")
	if r.code != 3 || !reflect.DeepEqual(r.argv, []string{"--debug", "delete", "--force", "c3"}) {
		t.Fatalf("exit %d argv %q; stderr %s", r.code, r.argv, r.stderr)
	}
	if string(r.config) != bundleConfig {
		t.Errorf("delete changed config.json:\n%s", r.config)
	}
}

func TestWrapperFailsClosed(t *testing.T) {
	bundle := writeBundle(t, `{"ociVersion": "1.0.2", "hooks": []}`, 0o644)
	r := runWrapper(t, t.TempDir(), bundle, "--ocigate-hook=/h/ocigate-hook", "create", "-b", bundle, "c4")
	if r.code != 1 || r.argv != nil || !strings.Contains(r.stderr, "create: container not started") {
		t.Errorf("broken config: exit %d, runc argv %q, stderr %s", r.code, r.argv, r.stderr)
	}
	r = runWrapper(t, t.TempDir(), bundle, "--ocigate-hook=/h/ocigate-hook", "create", "-b", filepath.Join(bundle, "nope"), "c4")
	if r.code != 1 || r.argv != nil || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing bundle: exit %d, runc argv %q, stderr %s", r.code, r.argv, r.stderr)
	}
}

func TestWrapperRefusesItselfAsRunc(t *testing.T) {
	if _, err := findRunc(os.Args[0]); err == nil || !strings.Contains(err.Error(), "is this wrapper") {
		t.Errorf("got %v", err)
	}
	if _, err := findRunc(filepath.Join(t.TempDir(), "runc")); err == nil || !strings.Contains(err.Error(), "--ocigate-runc") {
		t.Errorf("missing runc: %v", err)
	}
}
