package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// emit prints a marker line to stdout and the markers file.
func (s *suite) emit(format string, a ...any) {
	line := fmt.Sprintf(format, a...)
	line = strings.NewReplacer("\r", " ", "\n", " | ").Replace(line)
	fmt.Fprintln(s.out, line)
	if s.markers != nil {
		fmt.Fprintln(s.markers, line)
	}
}

// logf prints a diagnostic line (stdout only).
func (s *suite) logf(format string, a ...any) {
	fmt.Fprintf(s.out, "vmtest: "+format+"\n", a...)
}

// result collects one scenario's verdict.
type result struct {
	name   string
	fails  []string
	notes  []string
	diag   []string
	killed bool // the scenario could not continue
}

func (r *result) failf(format string, a ...any) { r.fails = append(r.fails, fmt.Sprintf(format, a...)) }

func (r *result) notef(format string, a ...any) { r.notes = append(r.notes, fmt.Sprintf(format, a...)) }

func (r *result) diagf(format string, a ...any) {
	d := fmt.Sprintf(format, a...)
	for _, x := range r.diag {
		if x == d {
			return
		}
	}
	r.diag = append(r.diag, d)
}

// abort records a failure that ends the scenario.
type abort struct{ msg string }

func (r *result) fatalf(format string, a ...any) {
	r.failf(format, a...)
	panic(abort{fmt.Sprintf(format, a...)})
}

func (s *suite) report(r *result) {
	verdict := "PASS"
	detail := strings.Join(r.notes, "; ")
	if len(r.fails) > 0 {
		verdict = "FAIL"
		s.failed = true
		detail = strings.Join(r.fails, "; ")
		if len(r.notes) > 0 {
			detail += " [" + strings.Join(r.notes, "; ") + "]"
		}
		for _, d := range r.diag {
			for _, l := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
				fmt.Fprintf(s.out, "  | %s\n", l)
			}
		}
	}
	if detail == "" {
		detail = "-"
	}
	s.emit("VMTEST-SCENARIO %s %s %s", r.name, verdict, detail)
}

// --- files ---

// agentLogSummary is the agent log without the per-workload lines, at most
// n lines (the first ones: backend choices and skipped backends).
func agentLogSummary(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if strings.Contains(l, "workload registered") || strings.Contains(l, "workload unregistered") {
			continue
		}
		if len(out) == n {
			out = append(out, "...")
			break
		}
		out = append(out, "  "+l)
	}
	return strings.Join(out, "\n")
}

func lastLines(path string, n int) string {
	return strings.ReplaceAll(agentlog.Tail(path, n), "\n", " | ")
}
