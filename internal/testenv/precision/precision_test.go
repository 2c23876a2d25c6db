package precision

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Runs of several backends make one table: each entry's outcome per
// backend, "—" where a backend did not run it, and the header per run.
func TestWriteResultsMergesBackends(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "precision")
	native := Run{Backend: "fallback", Results: []Result{
		{Kind: Attack, Name: "bash-dev-tcp", What: "bash /dev/tcp", Outcome: Stopped, Predicate: "dialled-stdio-socket", Evidence: "stdin on an INET socket"},
		{Kind: Benign, Name: "ci-agent-feeder", What: "CI | agent", Outcome: Disturbed, Conflict: "ci-shell-executor", ConflictOutcome: Untouched},
	}}
	if err := WriteResults(dir, native); err != nil {
		t.Fatal(err)
	}
	vm := Run{Backend: "lsm", Kernel: "6.1.0", Machine: "qemu", Results: []Result{{Kind: Attack, Name: "bash-dev-tcp", Outcome: Missed}}}
	if err := WriteResults(dir, vm); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "precision.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{
		"| lsm | ", "| 6.1.0 | qemu | 0/1 | 0/0 |", "| fmod_ret | not run |",
		"| bash-dev-tcp | bash /dev/tcp | stopped | missed | — | dialled-stdio-socket (stdin on an INET socket) |",
		`| ci-agent-feeder | CI \| agent | disturbed; untouched under profile ci-shell-executor | — | — |`,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	if err := WriteResults(dir, Run{}); err == nil {
		t.Error("a run without a backend was written")
	}
}
