// Command precisiontable adds the precision corpora's results of vmtest
// boots to the table of docs/precision.md (internal/testenv/precision).
//
//	precisiontable -dir docs/precision -machine TEXT MARKERS...
//
// Without MARKERS it only renders the table of the stored runs again.
// Each MARKERS file is one boot's marker lines (scripts/vmtest.sh):
// VMTEST-PRECISION-RUN names the boot's exec backend and kernel,
// VMTEST-PRECISION lines the outcomes. Boots of one backend (6.1 and
// 6.12) make one column: an entry's worst outcome over them, the kernels
// listed. The fallback boots are left out: the native e2e run, with the
// whole corpora, writes that column.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/ocigate/ocigate/internal/testenv/precision"
)

func main() {
	dir := flag.String("dir", "docs/precision", "where the runs are stored; the table goes to its parent's precision.md")
	machine := flag.String("machine", "", "the machine the VMs ran on")
	flag.Parse()
	if flag.NArg() == 0 { // only render what is stored
		if err := precision.RenderDir(*dir); err != nil {
			fmt.Fprintln(os.Stderr, "precisiontable:", err)
			os.Exit(1)
		}
		return
	}
	runs, err := collect(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "precisiontable:", err)
		os.Exit(1)
	}
	backends := make([]string, 0, len(runs))
	for be := range runs {
		backends = append(backends, be)
	}
	sort.Strings(backends)
	for _, be := range backends {
		run := runs[be]
		run.Machine = *machine
		if err := precision.WriteResults(*dir, *run); err != nil {
			fmt.Fprintln(os.Stderr, "precisiontable:", err)
			os.Exit(1)
		}
		fmt.Printf("precisiontable: %s: %d results (kernels %s)\n", be, len(run.Results), run.Kernel)
	}
}

// collect reads the boots' markers into one run per backend.
func collect(files []string) (map[string]*precision.Run, error) {
	runs := map[string]*precision.Run{}
	for _, f := range files {
		if err := readBoot(f, runs); err != nil {
			return nil, err
		}
	}
	return runs, nil
}

// rank orders outcomes from best to worst.
var rank = map[string]int{precision.Stopped: 0, precision.Untouched: 0, precision.Disturbed: 1, precision.Missed: 1}

func readBoot(file string, runs map[string]*precision.Run) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var run *precision.Run
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 3 && fields[0] == "VMTEST-PRECISION-RUN":
			if fields[1] == "fallback" {
				return nil
			}
			if run = runs[fields[1]]; run == nil {
				run = &precision.Run{Backend: fields[1]}
				runs[fields[1]] = run
			}
			if !strings.Contains(run.Kernel, fields[2]) {
				run.Kernel = strings.TrimPrefix(run.Kernel+", "+fields[2], ", ")
			}
		case len(fields) >= 5 && fields[0] == "VMTEST-PRECISION":
			if run == nil {
				return fmt.Errorf("%s: VMTEST-PRECISION before VMTEST-PRECISION-RUN", file)
			}
			add(run, precision.Result{Kind: fields[1], Name: fields[2], Outcome: fields[3],
				Predicate: strings.TrimPrefix(fields[4], "-"), What: strings.Join(fields[5:], " ")})
		}
	}
	return sc.Err()
}

// add records r, or keeps the worse of r and the entry's outcome on
// another kernel.
func add(run *precision.Run, r precision.Result) {
	for i, have := range run.Results {
		if have.Name == r.Name && have.Kind == r.Kind {
			if rank[r.Outcome] > rank[have.Outcome] {
				run.Results[i] = r
			}
			return
		}
	}
	run.Results = append(run.Results, r)
}
