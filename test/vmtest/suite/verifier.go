package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ocigate/ocigate/bpf/enforcer"
)

// The verifier table: how many instructions this kernel's verifier walks
// for each program of both BPF objects, each loaded alone and attached
// nowhere (enforcer.VerifierCosts). The suite measures it in every guest before
// the agent starts, and "suite verifier" measures the kernel it runs on
// (scripts/vmtest.sh: the host's column). Markers:
//
//	VMTEST-VERIFIER-BUDGET <per program> <per object>
//	VMTEST-VERIFIER <object> <program> <count|refused|rejected> [reason]
//
// refused: the kernel refused the program's type or attach target (not the
// verifier); rejected: the verifier refused it.

const verifierUsage = `usage: suite verifier [--markers FILE]
  loads every program of both BPF objects alone on this kernel, prints a
  VMTEST-VERIFIER marker per program and the verifier-budget verdict;
  exit 0 when within budget, 1 otherwise (needs root)`

// verifierMain is "suite verifier": the measurement alone, on this kernel.
func verifierMain(args []string) int {
	fs := flag.NewFlagSet("suite verifier", flag.ContinueOnError)
	markersPath := fs.String("markers", "", "also write the marker lines to this file")
	fs.Usage = func() { fmt.Fprintln(os.Stderr, verifierUsage) }
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	s := &suite{out: os.Stdout}
	if *markersPath != "" {
		f, err := os.OpenFile(*markersPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintf(os.Stderr, "suite verifier: --markers: %v\n", err)
			return 2
		}
		defer f.Close()
		s.markers = f
	}
	s.emit("VMTEST-INFO kernel %s", kernelRelease())
	s.runScenario(scenario{"verifier-budget", scenarioVerifierBudget})
	if s.failed {
		s.emit("VMTEST-RESULT FAIL")
		return 1
	}
	s.emit("VMTEST-RESULT PASS")
	return 0
}

// scenarioVerifierBudget measures the verifier's cost of every program
// and passes when enforcer.CheckVerifierBudget does: no program over
// enforcer.VerifierBudgetProgram, no object over enforcer.VerifierBudgetObject, no
// program the verifier rejected. A program the kernel refuses by type or
// target is reported, not failed: the security object's LSM and fmod_ret
// programs do not load on every kernel (the development kernel refuses
// both); whether the backend a boot expects attached is the backends
// scenario's check.
func scenarioVerifierBudget(s *suite, r *result) {
	start := time.Now()
	costs, err := enforcer.VerifierCosts()
	if err != nil {
		r.fatalf("measuring the verifier: %v", err)
	}
	s.emit("VMTEST-INFO verifier-time %s", time.Since(start).Round(100*time.Millisecond))
	s.emit("VMTEST-VERIFIER-BUDGET %d %d", enforcer.VerifierBudgetProgram, enforcer.VerifierBudgetObject)
	sum := map[string]int{}
	var objects, refused []string
	for _, c := range costs {
		if _, ok := sum[c.Object]; !ok {
			objects = append(objects, c.Object)
		}
		sum[c.Object] += int(c.Verified)
		switch {
		case c.Rejected:
			s.emit("VMTEST-VERIFIER %s %s rejected %s", c.Object, c.Program, shortReason(c.Err))
		case c.Err != "":
			s.emit("VMTEST-VERIFIER %s %s refused %s", c.Object, c.Program, shortReason(c.Err))
			refused = append(refused, c.Object+"/"+c.Program)
		default:
			s.emit("VMTEST-VERIFIER %s %s %d", c.Object, c.Program, c.Verified)
		}
	}
	if err := enforcer.CheckVerifierBudget(costs); err != nil {
		r.failf("over budget: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	for _, obj := range objects {
		r.notef("%s %d in all", obj, sum[obj])
	}
	if len(refused) > 0 {
		r.notef("refused by the kernel (type or target, not the verifier): %s", strings.Join(refused, " "))
	}
}

// shortReason is the first line of a load error, at most 160 characters.
func shortReason(err string) string {
	line, _, _ := strings.Cut(err, "\n")
	if len(line) > 160 {
		line = line[:157] + "..."
	}
	return line
}
