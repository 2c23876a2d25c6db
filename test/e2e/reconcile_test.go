package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// crashedContainer starts a runc container whose bundle has the
// createRuntime hook and no poststop, waits until the agent lists it, then
// SIGKILLs runc and the container's init: nothing will ever unregister it.
func crashedContainer(t *testing.T, name string) string {
	t.Helper()
	id := newID(name)
	bundle := t.TempDir()
	b := bundleFor(id, ctrOpts{Name: name, Args: []string{"/bin/sleep", "60"}})
	b.Poststop = nil
	// A parent of its own: the empty cgroup must stay, and other runs'
	// teardowns remove the empty cgroups below /ocigate-e2e.
	parent := crashParent()
	b.CgroupsPath = parent + "/" + id
	if err := testenv.WriteBundle(bundle, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testenv.RuncDelete(id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := testenv.RemoveCgroup(parent); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	var stderr bytes.Buffer
	runc := exec.Command(testenv.RuncPath, "run", "--bundle", bundle, id)
	runc.Stderr = &stderr
	if err := runc.Start(); err != nil {
		t.Fatal(err)
	}
	runcDone := make(chan struct{})
	go func() { _ = runc.Wait(); close(runcDone) }()
	t.Cleanup(func() { _ = runc.Process.Kill(); <-runcDone })
	waitRegistered(t, id, &stderr)
	// The hook ran before runc wrote the container's state: wait for it.
	var st struct {
		Pid int `json:"pid"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := testenv.Runc(context.Background(), 10*time.Second, "state", id)
		if err == nil {
			if err := json.Unmarshal([]byte(out), &st); err != nil || st.Pid <= 0 {
				t.Fatalf("runc state %q: %v", out, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// runc first, so that nothing is left to run poststop hooks.
	if err := runc.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-runcDone
	if err := syscall.Kill(st.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the container's init %d: %v", st.Pid, err)
	}
	waitGone(t, st.Pid)
	return id
}

// crashParent is the cgroup parent of crashedContainer's containers.
func crashParent() string { return fmt.Sprintf("/ocigate-e2e-reconcile-%d", os.Getpid()) }

func waitRegistered(t *testing.T, id string, stderr *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(containerTimeout)
	for !contains(workloads(t), id) {
		if time.Now().After(deadline) {
			t.Fatalf("container %s never registered; runc stderr %q\n%s", id, stderr.String(), diagnostics(id))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitGone waits until a process no longer exists (a zombie counts as gone).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil || bytes.Contains(data, []byte(") Z ")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive after SIGKILL", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitUnregistered waits up to limit for the agent to drop id and returns
// how long it took.
func waitUnregistered(t *testing.T, id string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for contains(workloads(t), id) {
		if time.Since(start) > limit {
			t.Fatalf("workload %s still registered %v after its container died\n%s", id, limit, diagnostics(id))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// A container whose runtime crashed (runc and the container's init
// SIGKILLed, no poststop ever runs) is dropped by the agent's periodic
// check: at once when its cgroup is removed, after two checks when the
// cgroup stays but is empty.
func TestReconcileCrashedRuntime(t *testing.T) {
	requireE2E(t)
	before := statusCounter(t, "workloads_reconciled")
	t.Run("cgroup-removed", func(t *testing.T) {
		id := crashedContainer(t, "crash-rm")
		if !contains(workloads(t), id) {
			t.Fatalf("dropped before its cgroup went: the test shows nothing")
		}
		if err := testenv.RemoveCgroup(crashParent() + "/" + id); err != nil {
			t.Fatal(err)
		}
		took := waitUnregistered(t, id, 2*reconcileInterval+2*time.Second)
		t.Logf("dropped %v after its cgroup was removed", took.Round(time.Millisecond))
	})
	t.Run("cgroup-left-empty", func(t *testing.T) {
		id := crashedContainer(t, "crash-empty")
		took := waitUnregistered(t, id, 3*reconcileInterval+2*time.Second)
		t.Logf("dropped %v after its last process died", took.Round(time.Millisecond))
		root, err := testenv.CgroupV2Root()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, crashParent(), id)); err != nil {
			t.Errorf("the cgroup is gone (%v): this case is about one that stays", err)
		}
	})
	if got := statusCounter(t, "workloads_reconciled"); got != before+2 {
		t.Errorf("status counter workloads_reconciled %d, want %d", got, before+2)
	}
	if !bytes.Contains(readFile(t, agentLog), []byte("workload dropped")) {
		t.Errorf("the agent log does not say it dropped them:\n%s", agentlog.Tail(agentLog, 20))
	}
}

func statusCounter(t *testing.T, name string) uint64 {
	t.Helper()
	out, err := agentStatus()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Counters map[string]uint64 `json:"counters"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	return st.Counters[name]
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
