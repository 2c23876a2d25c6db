package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/seeds"
)

func TestProfilesCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(seeds.Dir(t), "05-enforce-no-reverse-shell.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: bad}
spec:
  kprobes:
  - call: tcp_connect
    args: [{index: 0, type: sock}]
    selectors:
    - matchArgs: [{index: 0, operator: DAddr, values: ["10.0.0.0/33"]}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"check", good}, 0, "ok: 1 files", ""},
		{[]string{"check", good, bad}, 1, "", bad + ":9: spec.kprobes[0].selectors[0].matchArgs[0].values[0]"},
		{[]string{"check"}, 2, "", ""},
		{[]string{"frobnicate"}, 2, "", ""},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code, err := profilesCmd(tt.args, &out, &errOut)
		if code != tt.code {
			t.Errorf("%v: exit %d (err %v), want %d; stderr %s", tt.args, code, err, tt.code, errOut.String())
		}
		if !strings.Contains(out.String(), tt.out) || !strings.Contains(errOut.String(), tt.err) {
			t.Errorf("%v: stdout %q stderr %q, want %q / %q", tt.args, out.String(), errOut.String(), tt.out, tt.err)
		}
	}
}

func TestProfilesShow(t *testing.T) {
	var out, errOut bytes.Buffer
	code, err := profilesCmd([]string{"show", "--profiles", t.TempDir(), "reverse-shell"}, &out, &errOut)
	if code != 0 || err != nil {
		t.Fatalf("exit %d, %v", code, err)
	}
	for _, want := range []string{"profile reverse-shell (mode enforce", "exec:", "stdio is an INET socket => Sigkill", "connect:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("show output lacks %q:\n%s", want, out.String())
		}
	}
	if code, _ := profilesCmd([]string{"show", "--profiles", t.TempDir(), "nope"}, &out, &errOut); code != 1 {
		t.Errorf("unknown profile: exit %d, want 1", code)
	}
}
