package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// ToolsRequired reports whether a test that finds a program it needs
// missing must fail instead of skipping: under make test, which exports
// OCIGATE_REQUIRE_TOOLS=1 after scripts/deps.sh installed everything, and
// in the end-to-end tests (OCIGATE_E2E=1).
func ToolsRequired() bool {
	return os.Getenv("OCIGATE_REQUIRE_TOOLS") == "1" || os.Getenv("OCIGATE_E2E") == "1"
}

// ErrToolMissing is wrapped by FindTool's error for a missing program.
var ErrToolMissing = errors.New("not found (scripts/deps.sh installs it)")

// FindTool returns the path of the program name: name itself when it
// holds a slash (it must exist and be executable), else its path on PATH.
// The error names the program and scripts/deps.sh.
func FindTool(name string) (string, error) {
	if strings.Contains(name, "/") {
		fi, err := os.Stat(name)
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("%s: %w", name, ErrToolMissing)
		}
		return name, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, ErrToolMissing)
	}
	return p, nil
}

// NeedTools checks that every program of names exists (see FindTool).
// When some are missing it fails the test when ToolsRequired, else skips
// it; either way the message names each missing program.
func NeedTools(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if _, err := FindTool(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("%s: %v", strings.Join(missing, ", "), ErrToolMissing)
	if ToolsRequired() {
		t.Fatal(msg)
	} else {
		t.Skip(msg)
	}
}

// NeedTool is NeedTools for one program, and returns its path.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	NeedTools(t, name)
	p, err := FindTool(name)
	if err != nil { // gone since NeedTools looked
		t.Fatal(err)
	}
	return p
}
