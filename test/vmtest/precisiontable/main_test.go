package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ocigate/ocigate/internal/testenv/precision"
)

// Boots of one backend on two kernels make one run: the worse outcome,
// both kernels; fallback boots are left to the native run.
func TestCollectMergesKernels(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := []string{
		write("a", "VMTEST-INFO x\nVMTEST-PRECISION-RUN lsm 6.1.0\nVMTEST-PRECISION attack nc-e stopped dialled-stdio-socket nc -e /bin/sh\n"+
			"VMTEST-PRECISION benign inetd untouched - nc -l -e rev\n"),
		write("b", "VMTEST-PRECISION-RUN lsm 6.12.1\nVMTEST-PRECISION attack nc-e missed - nc -e /bin/sh\n"),
		write("c", "VMTEST-PRECISION-RUN fallback 6.1.0\nVMTEST-PRECISION attack nc-e missed - x\n"),
	}
	runs, err := collect(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs["lsm"] == nil {
		t.Fatalf("runs %v", runs)
	}
	lsm := runs["lsm"]
	if lsm.Kernel != "6.1.0, 6.12.1" || len(lsm.Results) != 2 {
		t.Fatalf("lsm run %+v", lsm)
	}
	if r := lsm.Results[0]; r.Outcome != precision.Missed || r.What != "nc -e /bin/sh" {
		t.Errorf("nc-e %+v, want missed (6.12) over stopped (6.1)", r)
	}
	if _, err := collect([]string{write("d", "VMTEST-PRECISION attack x stopped - y\n")}); err == nil {
		t.Error("an outcome before the run line was accepted")
	}
}
