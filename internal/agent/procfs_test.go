package agent

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// statFields reads the fields strings.Fields would, in place: on this
// process's own stat, and on lines too short to hold starttime.
func TestStatFields(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip(err)
	}
	rest := b[bytes.LastIndexByte(b, ')')+1:]
	want := strings.Fields(string(rest))
	f1, f19 := statFields(rest)
	if string(f1) != want[1] || string(f19) != want[19] {
		t.Fatalf("fields %q %q, want %q %q", f1, f19, want[1], want[19])
	}
	if _, f19 := statFields([]byte(" S 1 2 3\n")); f19 != nil {
		t.Fatalf("a short line gave starttime %q", f19)
	}
	ppid, start, ok := procFS{}.stat(uint32(os.Getpid()))
	if !ok || ppid != uint32(os.Getppid()) || start == 0 {
		t.Fatalf("stat of this process: ppid %d start %d ok %v", ppid, start, ok)
	}
	if got := (procFS{root: "/x/proc/"}).path(42, "cwd"); got != "/x/proc/42/cwd" {
		t.Fatalf("path %q", got)
	}
}

// cwd reads a live process's working directory, and none of a reaped
// one (which it learns from kill(pid, 0) without a lookup in /proc).
func TestCwdOfLiveAndReapedProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sleep", "30")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	pid := uint32(cmd.Process.Pid)
	if got := (procFS{}).cwd(pid); got != dir {
		t.Errorf("live process: cwd %q, want %q", got, dir)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if got := (procFS{}).cwd(pid); got != "" {
		t.Errorf("reaped process: cwd %q, want none", got)
	}
}
