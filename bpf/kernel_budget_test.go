package bpf

import (
	"sort"
	"testing"

	"github.com/cilium/ebpf"
)

// verifierBudget bounds the instructions the verifier walks per program:
// half the kernel's 1M limit, so older verifiers (6.1 walks more than
// 6.18) and new predicates keep room, and the agent's start stays quick
// under QEMU's TCG.
const verifierBudget = 500_000

// Every fallback program, loaded alone, stays within the budget. The
// security object's programs are checked by `make vmtest` on kernels
// that accept them.
func TestVerifierBudget(t *testing.T) {
	spec, err := loadFallback()
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(spec.Programs))
	for n := range spec.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	total := 0
	for _, name := range names {
		cs := spec.Copy()
		for n := range cs.Programs {
			if n != name {
				delete(cs.Programs, n)
			}
		}
		coll, err := ebpf.NewCollection(cs)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		info, err := coll.Programs[name].Info()
		if err != nil {
			t.Fatal(err)
		}
		n, ok := info.VerifiedInstructions()
		coll.Close()
		if !ok {
			t.Skip("the kernel does not report verified instructions")
		}
		total += int(n)
		t.Logf("%-14s %7d", name, n)
		if n > verifierBudget {
			t.Errorf("%s: %d verified instructions, budget %d", name, n, verifierBudget)
		}
	}
	t.Logf("total %d", total)
}
