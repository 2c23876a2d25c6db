package enforcer

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/ocigate/ocigate/bpf"
)

// The verifier budget: what each program, and each object in sum, may
// make the kernel's verifier walk on every kernel the project tests. The
// kernel's own limit is 1M instructions per program; the budget keeps a
// tenth of it so that a verifier change between kernel builds, which has
// multiplied the walk eightfold before, still loads.
const (
	VerifierBudgetProgram = 100_000
	VerifierBudgetObject  = 500_000
)

// ProgramCost is what the verifier did with one program, loaded alone
// against the shared maps.
type ProgramCost struct {
	Object  string `json:"object"` // "fallback" or "security"
	Program string `json:"program"`
	// Verified is the number of instructions the verifier walked (0 when
	// the program did not load or the kernel does not say).
	Verified uint32 `json:"verified"`
	// Err is why the program did not load, "" when it did.
	Err string `json:"error,omitempty"`
	// Rejected: the verifier refused the program (Err says why); other
	// errors are the kernel refusing the program's type or target.
	Rejected bool `json:"rejected,omitempty"`
}

// VerifierCosts loads every program of both objects, one at a time, and
// reports how many instructions the verifier walked for each. A program
// the kernel refuses (its type, its attach target, or the verifier) is
// reported with the reason. Needs root; nothing is attached.
func VerifierCosts() ([]ProgramCost, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise memlock limit: %w", err)
	}
	fb, err := bpf.LoadFallback()
	if err != nil {
		return nil, err
	}
	var maps bpf.FallbackMaps
	if err := fb.LoadAndAssign(&maps, nil); err != nil {
		return nil, fmt.Errorf("create maps: %w", err)
	}
	defer maps.Close()
	env := &attachEnv{maps: bpf.MapsByName(&maps)}
	if kt, err := btf.LoadKernelSpec(); err == nil {
		env.kernelTypes = kt
	}
	var out []ProgramCost
	for _, obj := range bpf.Objects() {
		spec, err := obj.Parse()
		if err != nil {
			return nil, fmt.Errorf("%s object: %w", obj.Name, err)
		}
		names := make([]string, 0, len(spec.Programs))
		for n := range spec.Programs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			out = append(out, measureProgram(env, spec, obj.Name, name))
		}
	}
	return out, nil
}

// helperGated are the programs whose type gets the rule engine's
// current-task helpers only on newer kernels (Debian's 6.1 and 6.12 give
// cgroup_skb programs none): there their point is unavailable, as a
// point whose hook the kernel lacks, and the verifier budget does not
// count them as rejected.
var helperGated = map[string]string{
	"recv_skb": "cgroup_skb programs lack the current-task helpers on this kernel",
}

// helperRefused reports whether a verifier error is a helper the
// program's type does not get (6.1: "unknown func", 6.12: "cannot use
// helper").
func helperRefused(err string) bool {
	return strings.Contains(err, "unknown func") || strings.Contains(err, "cannot use helper")
}

func measureProgram(env *attachEnv, spec *ebpf.CollectionSpec, object, name string) ProgramCost {
	c := ProgramCost{Object: object, Program: name}
	p, err := env.load(spec, name)
	if err != nil {
		var ve *ebpf.VerifierError
		c.Err, c.Rejected = err.Error(), errors.As(err, &ve)
		if why, ok := helperGated[name]; ok && c.Rejected && helperRefused(c.Err) {
			// refused by its type's helpers, not by the verifier's walk
			c.Err, c.Rejected = why+": "+firstLine(c.Err), false
		}
		return c
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		c.Err = fmt.Sprintf("program info: %v", err)
		return c
	}
	if n, ok := info.VerifiedInstructions(); ok {
		c.Verified = n
	} else {
		c.Err = "the kernel does not report verified instructions (5.16+)"
	}
	return c
}

// CheckVerifierBudget returns an error naming every program and object
// over the budget.
func CheckVerifierBudget(costs []ProgramCost) error {
	var errs []error
	sum := map[string]int{}
	for _, c := range costs {
		if c.Rejected {
			errs = append(errs, fmt.Errorf("%s/%s: %s", c.Object, c.Program, firstLine(c.Err)))
		}
		sum[c.Object] += int(c.Verified)
		if c.Verified > VerifierBudgetProgram {
			errs = append(errs, fmt.Errorf("%s/%s: %d verified instructions, budget %d",
				c.Object, c.Program, c.Verified, VerifierBudgetProgram))
		}
	}
	for _, obj := range bpf.Objects() {
		if sum[obj.Name] > VerifierBudgetObject {
			errs = append(errs, fmt.Errorf("%s: %d verified instructions in all, budget %d",
				obj.Name, sum[obj.Name], VerifierBudgetObject))
		}
	}
	return errors.Join(errs...)
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
