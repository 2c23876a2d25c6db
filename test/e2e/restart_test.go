package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// runningContainer starts a long-running container registered with the
// agent at socket and returns its ID; stopContainer ends it.
func runningContainer(t *testing.T, name, socket string) (string, <-chan ctrResult) {
	t.Helper()
	id := newID(name)
	bundle := t.TempDir()
	b := bundleFor(id, ctrOpts{Name: name, Socket: socket, Args: []string{"/bin/sh", "-c", "sleep 120"}})
	if err := testenv.WriteBundle(bundle, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupContainer(t, id) })
	done := make(chan ctrResult, 1)
	go func() {
		stdout, stderr, code, err := testenv.RunRunc(context.Background(), bundle, id, 3*time.Minute)
		if err != nil {
			stderr += " (" + err.Error() + ")"
		}
		done <- ctrResult{ID: id, Stdout: stdout, Stderr: stderr, ExitCode: code}
	}()
	return id, done
}

// waitRunning waits until runc reports the container running.
func waitRunning(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out, err := testenv.Runc(context.Background(), 5*time.Second, "state", id)
		var st struct{ Status string }
		if err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Status == "running" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("container %s not running within 20s", id)
}

// execConnect runs `probe connect ADDR` inside the running container and
// returns what it printed.
func execConnect(t *testing.T, id, addr string) string {
	t.Helper()
	out, err := testenv.Runc(context.Background(), 15*time.Second, "exec", id, "/probe", "connect", addr)
	if err != nil && !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("runc exec %s probe connect %s: %v", id, addr, err)
	}
	return strings.TrimSpace(out)
}

func wantRefused(t *testing.T, when, out string) {
	t.Helper()
	if out != "error: operation not permitted" {
		t.Errorf("%s: connect from the container printed %q, want it refused with EPERM", when, out)
	}
}

// The agent is killed with SIGKILL and restarted twice while a container
// runs: enforcement never stops (a connect to the stand-in attacker is
// refused while the agent is down), the restarted agent lists the
// container again and reports the refusal made while it was down (the
// event waited in the pinned ring buffer), a SIGTERM writes out an event
// from just before it, and the container's poststop after the restarts
// unregisters it everywhere.
func TestAgentRestartKeepsEnforcement(t *testing.T) {
	requireE2E(t)
	a := startOwnAgent(t, "restart")
	id, exited := runningContainer(t, "restart", a.socket)
	waitRunning(t, id)
	if _, ok := a.waitStatus(10*time.Second, func(s *ownState) bool { return s.has(id) }); !ok {
		t.Fatalf("container %s never registered\n%s", id, agentlog.Tail(a.log, 20))
	}
	wantRefused(t, "agent running", execConnect(t, id, "127.0.0.2:5001"))
	if _, err := a.eventLog.Wait(context.Background(), eventTimeout, agentlog.Matcher(deniedConnect(id, "127.0.0.2", 5001))); err != nil {
		t.Fatalf("no event for the first refusal: %v", err)
	}

	if err := a.stop(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "agent killed", execConnect(t, id, "127.0.0.2:5002"))

	a.start()
	st := a.mustStatus()
	if !st.has(id) || st.Counters["workloads_restored"] != 1 || st.Counters["workloads_map_entries"] != 1 {
		t.Fatalf("after the restart: workloads %+v, counters %v", st.Workloads, st.Counters)
	}
	t.Logf("restored: %+v", st.Workloads)
	if _, err := a.eventLog.Wait(context.Background(), eventTimeout, agentlog.Matcher(deniedConnect(id, "127.0.0.2", 5002))); err != nil {
		t.Errorf("the refusal made while the agent was down was not reported after the restart: %v\n%s", err, strings.Join(a.eventLog.Lines(), "\n"))
	}
	wantRefused(t, "agent restarted", execConnect(t, id, "127.0.0.2:5003"))

	// SIGTERM right after a refusal: the event is written before the exit.
	wantRefused(t, "before SIGTERM", execConnect(t, id, "127.0.0.2:5004"))
	if err := a.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.eventLog.Find(agentlog.Matcher(deniedConnect(id, "127.0.0.2", 5004))); !ok {
		t.Errorf("the refusal just before SIGTERM is not in the events file after the agent exited")
	}
	wantRefused(t, "agent stopped", execConnect(t, id, "127.0.0.2:5005"))

	a.start()
	if st := a.mustStatus(); !st.has(id) {
		t.Fatalf("after the second restart: workloads %+v", st.Workloads)
	}
	if _, err := testenv.Runc(context.Background(), 10*time.Second, "kill", id, "KILL"); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-exited:
		t.Logf("%v", res)
	case <-time.After(time.Minute):
		t.Fatal("container did not exit after runc kill")
	}
	st, ok := a.waitStatus(5*time.Second, func(s *ownState) bool {
		return len(s.Workloads) == 0 && s.Counters["workloads_map_entries"] == 0 && s.Counters["workload_records"] == 0
	})
	if !ok {
		t.Fatalf("after the container stopped: workloads %+v, counters %v", st.Workloads, st.Counters)
	}
	if entries, err := os.ReadDir(a.stateDir); err != nil || len(entries) != 0 {
		t.Fatalf("workload records left in %s: %v %v", a.stateDir, entries, err)
	}
}

// While the agent is down a new container is refused (fail-closed) or,
// fail-open, starts unprotected; an agent that comes back finds neither.
func TestAgentDownAtContainerStart(t *testing.T) {
	requireE2E(t)
	a := startOwnAgent(t, "down")
	if err := a.stop(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := runContainer(t, ctrOpts{Name: "down-closed", Socket: a.socket, Args: []string{"/probe", "connect", "127.0.0.1:9"}})
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "fail-closed") {
		t.Errorf("the container started with the agent down; %v", res)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("runc took %v to refuse the container: the hook must not hang", took)
	}
	hookLog := filepath.Join(t.TempDir(), "hook.log")
	res = runContainer(t, ctrOpts{Name: "down-open", Socket: a.socket, HookExtra: []string{"--fail-open"}, HookWrap: hookLog,
		Args: []string{"/probe", "connect", "127.0.0.2:5010"}})
	if res.ExitCode == 0 || !strings.Contains(res.Stdout, "connection refused") {
		t.Errorf("fail-open: want the container to run unenforced (connection refused, not EPERM); %v", res)
	}
	a.start()
	if st := a.mustStatus(); len(st.Workloads) != 0 || st.Counters["workloads_map_entries"] != 0 {
		t.Fatalf("workloads after the restart: %+v, counters %v", st.Workloads, st.Counters)
	}
}
