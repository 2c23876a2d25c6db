package wire

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// heavy are the packages whose code or initialisation the hook pays for
// at every container's start (the brief of issue 16 measured fmt, flag,
// context and x/sys/unix at ~57 us, encoding/json and runtime-spec at
// ~100 us more); none is imported here, even indirectly, so none can be
// reached.
var heavy = []string{"fmt", "encoding/json", "encoding/binary", "reflect", "flag", "context", "net", "sort",
	"golang.org/x/sys/unix", "github.com/opencontainers/runtime-spec/specs-go"}

// Package wire, and everything it imports (cgroupfilter, plainjson,
// errwrap, jsonstr, sysread), imports none of the heavy packages.
func TestImportsNothingHeavy(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/ocigate/ocigate/cgroupfilter") {
		t.Fatalf("go list -deps lists no cgroupfilter: %q", deps)
	}
	for _, p := range heavy {
		if slices.Contains(deps, p) {
			t.Errorf("package wire imports %s (go list -deps)", p)
		}
	}
}
