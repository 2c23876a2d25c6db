package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// Deps returns the import paths of the package in the test's directory
// and of everything it imports, directly or not (go list -deps).
func Deps(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	return strings.Fields(string(out))
}
