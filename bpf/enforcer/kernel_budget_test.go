package enforcer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/internal/bpftest"
)

// Every program of both objects, loaded alone on this kernel, stays
// within the verifier budget (VerifierBudgetProgram, VerifierBudgetObject);
// the verifier refusing any program fails. Programs whose type this
// kernel refuses (LSM or fmod_ret where they are off) are listed; `make
// vmtest` measures them on kernels that take them.
func TestVerifierBudget(t *testing.T) {
	bpftest.NeedRoot(t)
	costs, err := VerifierCosts()
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + costTable(costs))
	if err := CheckVerifierBudget(costs); err != nil {
		t.Error(err)
	}
	for _, c := range costs {
		if c.Object == "fallback" && c.Err != "" && !c.Rejected {
			t.Errorf("%s/%s did not load: %s", c.Object, c.Program, firstLine(c.Err))
		}
	}
}

func costTable(costs []ProgramCost) string {
	var b strings.Builder
	sums := map[string]int{}
	for _, c := range costs {
		v := fmt.Sprint(c.Verified)
		if c.Err != "" {
			v = "not loaded: " + firstLine(c.Err)
			if len(v) > 90 {
				v = v[:90] + "…"
			}
		}
		sums[c.Object] += int(c.Verified)
		fmt.Fprintf(&b, "%-9s %-22s %s\n", c.Object, c.Program, v)
	}
	for _, obj := range bpf.Objects() {
		fmt.Fprintf(&b, "%-9s %-22s %d\n", obj.Name, "(total)", sums[obj.Name])
	}
	return b.String()
}
