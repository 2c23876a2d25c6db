package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestInstallCommand(t *testing.T) {
	dir := t.TempDir()
	hooks := filepath.Join(dir, "hooks.d")
	state := filepath.Join(dir, "state")
	common := []string{"--hooks-dir", hooks, "--state-dir", state, "--hook-path", "/opt/o/ocigate-hook"}
	run := func(uninstall bool, args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := installCmd(args, uninstall, &out); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}

	out := run(false, append([]string{"podman", "--dry-run"}, common...)...)
	if !strings.Contains(out, "[dry run] create "+filepath.Join(hooks, "ocigate-createRuntime.json")) {
		t.Errorf("dry run output:\n%s", out)
	}
	if _, err := os.Stat(dir + "/hooks.d"); err == nil {
		t.Fatalf("dry run created %s", hooks)
	}
	// The runtime may also follow the flags.
	out = run(false, append(common, "podman")...)
	if !strings.Contains(out, "create "+filepath.Join(hooks, "ocigate-poststop.json")) || !strings.Contains(out, "--hooks-dir "+hooks) {
		t.Errorf("install output:\n%s", out)
	}
	if out = run(false, append([]string{"podman"}, common...)...); !strings.Contains(out, "nothing to change") {
		t.Errorf("second install:\n%s", out)
	}
	if out = run(true, append([]string{"podman"}, common...)...); !strings.Contains(out, "remove "+filepath.Join(hooks, "ocigate-createRuntime.json")) {
		t.Errorf("uninstall:\n%s", out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestInstallCommandCtrSpec(t *testing.T) {
	var out bytes.Buffer
	if err := installCmd([]string{"containerd", "--ctr-spec", "--hook-path", "/h/ocigate-hook", "--fail-open"}, false, &out); err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("not a spec: %v\n%s", err, out.String())
	}
	if s.Hooks == nil || len(s.Hooks.CreateRuntime) != 1 || s.Hooks.CreateRuntime[0].Args[1] != "--fail-open" {
		t.Errorf("hooks %+v", s.Hooks)
	}
}

func TestInstallCommandErrors(t *testing.T) {
	for _, tt := range []struct {
		args      []string
		uninstall bool
		want      string
	}{
		{nil, false, "want a runtime"},
		{[]string{"lxc"}, false, `unknown runtime "lxc"`},
		{[]string{"podman", "extra"}, false, "unexpected arguments"},
		{[]string{"podman", "--ctr-spec"}, false, "--ctr-spec is for install containerd"},
		{[]string{"containerd", "--ctr-spec"}, true, "--ctr-spec is for install containerd"},
		{[]string{"podman", "--frob"}, false, "unknown flag: --frob"},
	} {
		var out bytes.Buffer
		if err := installCmd(tt.args, tt.uninstall, &out); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want %q", tt.args, err, tt.want)
		}
	}
}
