package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindTool(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "exe")
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if p, err := FindTool("exe"); err != nil || p != exe {
		t.Errorf("FindTool(exe) = %q, %v; want %q", p, err, exe)
	}
	if p, err := FindTool(exe); err != nil || p != exe {
		t.Errorf("FindTool(%s) = %q, %v", exe, p, err)
	}
	for _, name := range []string{"plain", plain, dir, "ocigate-no-such-tool", filepath.Join(dir, "none")} {
		_, err := FindTool(name)
		if !errors.Is(err, ErrToolMissing) || !strings.HasPrefix(err.Error(), name+": ") ||
			!strings.Contains(err.Error(), "scripts/deps.sh") {
			t.Errorf("FindTool(%s): %v; want %s: ... scripts/deps.sh", name, err, name)
		}
	}
}

// recordingTB notes NeedTools' Fatal and Skip instead of stopping.
type recordingTB struct {
	testing.TB
	fatal, skip string
}

func (r *recordingTB) Fatal(args ...any) { r.fatal = args[0].(string) }
func (r *recordingTB) Skip(args ...any)  { r.skip = args[0].(string) }

func TestNeedToolsFailsOnlyWhenRequired(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, tt := range []struct {
		e2e, require string
		fails        bool
	}{{"", "", false}, {"1", "", true}, {"", "1", true}, {"0", "0", false}} {
		t.Setenv("OCIGATE_E2E", tt.e2e)
		t.Setenv("OCIGATE_REQUIRE_TOOLS", tt.require)
		r := &recordingTB{TB: t}
		NeedTools(r, "ocigate-missing-a", "/bin/sh", "ocigate-missing-b")
		msg := r.skip
		if tt.fails {
			msg = r.fatal
		}
		if want := "ocigate-missing-a, ocigate-missing-b: not found (scripts/deps.sh installs it)"; msg != want ||
			(r.fatal != "" && r.skip != "") {
			t.Errorf("E2E=%q REQUIRE=%q: fatal %q, skip %q; want %q as a failure: %v",
				tt.e2e, tt.require, r.fatal, r.skip, want, tt.fails)
		}
	}
	r := &recordingTB{TB: t}
	NeedTools(r, "/bin/sh")
	if r.fatal != "" || r.skip != "" {
		t.Errorf("present tool: fatal %q, skip %q", r.fatal, r.skip)
	}
}
