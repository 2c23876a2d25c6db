package wire

import (
	"slices"
	"testing"

	"github.com/ocigate/ocigate/internal/testenv"
)

// heavy are the packages whose code or initialisation the hook pays for
// at every container's start (measured: fmt, flag, context and
// x/sys/unix ~57 us, encoding/json and runtime-spec ~100 us more); none
// is imported here, even indirectly, so none can be reached.
var heavy = []string{"fmt", "encoding/json", "encoding/binary", "reflect", "flag", "context", "net", "sort",
	"golang.org/x/sys/unix", "github.com/opencontainers/runtime-spec/specs-go"}

// Package wire, and everything it imports (cgroupfilter, plainjson,
// errwrap, jsonstr, sysread), imports none of the heavy packages.
func TestImportsNothingHeavy(t *testing.T) {
	deps := testenv.Deps(t)
	if !slices.Contains(deps, "github.com/ocigate/ocigate/cgroupfilter") {
		t.Fatalf("go list -deps lists no cgroupfilter: %q", deps)
	}
	for _, p := range heavy {
		if slices.Contains(deps, p) {
			t.Errorf("package wire imports %s (go list -deps)", p)
		}
	}
}
