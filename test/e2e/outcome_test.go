package e2e

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ocigate/ocigate/internal/testenv"
)

// What a refused exec looks like depends on the backend the agent's exec
// point runs on (testenv.ExecRefusal): EPERM in the caller under BPF LSM
// and fmod_ret, SIGKILL of the new program under the fallback. The tests
// expect the outcome of the backend the suite's agent reports, check it
// as strictly as the other's, and log which one they saw.

var (
	execRefusalOnce sync.Once
	execRefusalSeen testenv.ExecRefusal
	execRefusalErr  error
)

// execRefusal is the refusal of the suite's agent, from its status.
func execRefusal(t *testing.T) testenv.ExecRefusal {
	t.Helper()
	execRefusalOnce.Do(func() {
		out, err := agentStatus()
		if err != nil {
			execRefusalErr = err
			return
		}
		backend, err := testenv.ExecBackend(out)
		if err != nil {
			execRefusalErr = err
			return
		}
		execRefusalSeen, execRefusalErr = testenv.NewExecRefusal(backend)
	})
	if execRefusalErr != nil {
		t.Fatalf("how the agent refuses an exec: %v", execRefusalErr)
	}
	return execRefusalSeen
}

// shellExec is the exec decision on shell (the path execve was given;
// any, if empty) in the container, whatever its outcome.
func shellExec(containerID, shell string) map[string]any {
	want := map[string]any{
		"process_kprobe.function_name": "security_bprm_check",
		"ocigate.container_id":         containerID,
	}
	if shell != "" {
		want["process_kprobe.args.0.linux_binprm_arg.path"] = shell
	}
	return want
}

// relayExec is the relay decision on shell: the built-in relay selectors
// declare no arguments, so the shell is their event's file_arg.
func relayExec(containerID, shell string) map[string]any {
	want := map[string]any{
		"process_kprobe.function_name": "security_bprm_check",
		"ocigate.container_id":         containerID,
	}
	if shell != "" {
		want["process_kprobe.args.0.file_arg.path"] = shell
	}
	return want
}

// waitExecRefused waits for the event of an exec the agent refused (want
// plus what the backend's refusal says) and logs the outcome.
func waitExecRefused(t *testing.T, containerID string, want map[string]any) map[string]any {
	t.Helper()
	r := execRefusal(t)
	ev := waitEvent(t, containerID, r.Event(want))
	if ev != nil {
		t.Logf("exec refused on the %s backend: %s, verdict %s", r.Backend, r.Action(), r.Verdict())
	}
	return ev
}

// waitExecMonitored waits for a monitor profile's event of an exec that
// enforce mode would have refused.
func waitExecMonitored(t *testing.T, containerID string, want map[string]any) map[string]any {
	t.Helper()
	r := execRefusal(t)
	ev := waitEvent(t, containerID, r.MonitorEvent(want))
	if ev != nil {
		t.Logf("exec reported, not refused, on the %s backend: %s, would-deny", r.Backend, r.Action())
	}
	return ev
}

// checkExecExit checks the exit code of a program whose exec the agent
// refused (testenv.ExecRefusal.CheckExit) and logs the outcome seen.
func checkExecExit(t *testing.T, res fmt.Stringer, code int, output string, callerCode int) {
	t.Helper()
	seen, err := execRefusal(t).CheckExit(code, output, callerCode)
	if err != nil {
		t.Errorf("%v; %v", err, res)
		return
	}
	t.Logf("refused exec: %s", seen)
}

// waitRelayKilled waits for the kill of a relayed shell (want plus the
// relay point's enforced Sigkill, the same on every backend) and logs
// how it was stopped: at its exec, or at its peer's connect.
func waitRelayKilled(t *testing.T, containerID string, want map[string]any) map[string]any {
	t.Helper()
	ev := waitEvent(t, containerID, with(want, map[string]any{"ocigate.point": "relay",
		"process_kprobe.action": "KPROBE_ACTION_SIGKILL", "ocigate.enforced": true}))
	if ev == nil {
		return nil
	}
	how, err := testenv.RelayKill(ev)
	if err != nil {
		t.Errorf("relayed shell: %v", err)
		return ev
	}
	t.Logf("relayed shell stopped: %s", how)
	return ev
}
