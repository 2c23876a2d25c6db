package testenv

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// Backends of the exec point, as the agent's status names them.
const (
	BackendLSM      = "lsm"
	BackendFmodRet  = "fmod_ret"
	BackendFallback = "fallback"
)

// ExecRefusal is how the agent refuses an exec on the backend its exec
// point runs on (docs/architecture.md, "Enforcement points and backends"):
//
//   - BPF LSM and fmod_ret: the execve fails with EPERM in the caller,
//     nothing new runs; the caller goes on, prints its error and exits
//     with its own code. The event says Override, errno 1 (EPERM),
//     verdict denied.
//   - fallback: the new program is SIGKILLed at sched_process_exec,
//     before its first instruction: exit status 137 (signal 9). The event
//     says Sigkill, verdict killed.
//
// A Sigkill selector at exec is reported so even in a monitor profile
// (Override under LSM and fmod_ret), with verdict would-deny.
type ExecRefusal struct {
	Backend string
}

// NewExecRefusal is the refusal of backend; a backend that refuses no
// exec (none: the exec point is unavailable) is an error.
func NewExecRefusal(backend string) (ExecRefusal, error) {
	switch backend {
	case BackendLSM, BackendFmodRet, BackendFallback:
		return ExecRefusal{Backend: backend}, nil
	}
	return ExecRefusal{}, fmt.Errorf("exec point backend %q refuses no exec (want lsm, fmod_ret or fallback)", backend)
}

// ExecBackend reads the exec point's backend from the agent's status
// (`ocigate-agentd status -o json`).
func ExecBackend(statusJSON []byte) (string, error) {
	var st struct {
		Backends []struct {
			Point   string `json:"point"`
			Backend string `json:"backend"`
			Error   string `json:"error"`
		} `json:"backends"`
	}
	if err := json.Unmarshal(statusJSON, &st); err != nil {
		return "", fmt.Errorf("agent status: %w", err)
	}
	for _, b := range st.Backends {
		if b.Point != "exec" {
			continue
		}
		if b.Error != "" {
			return "", fmt.Errorf("agent status: exec point unavailable: %s", b.Error)
		}
		return b.Backend, nil
	}
	return "", fmt.Errorf("agent status names no exec point backend")
}

// Kills reports whether the refused program is killed (fallback) rather
// than its execve failing in the caller.
func (r ExecRefusal) Kills() bool { return r.Backend == BackendFallback }

// Action is the event's process_kprobe.action for a Sigkill selector at
// exec, enforced or in a monitor profile.
func (r ExecRefusal) Action() string {
	if r.Kills() {
		return "KPROBE_ACTION_SIGKILL"
	}
	return "KPROBE_ACTION_OVERRIDE"
}

// Verdict is the enforced event's ocigate.verdict.
func (r ExecRefusal) Verdict() string {
	if r.Kills() {
		return "killed"
	}
	return "denied"
}

// Event returns want (copied) with what an enforced refusal's event
// says on this backend: the action, the verdict, the backend and, where
// the execve fails, errno EPERM.
func (r ExecRefusal) Event(want map[string]any) map[string]any {
	out := r.with(want)
	out["ocigate.enforced"] = true
	out["ocigate.verdict"] = r.Verdict()
	if !r.Kills() {
		out["ocigate.errno"] = 1
	}
	return out
}

// MonitorEvent returns want (copied) with what a monitor profile's
// would-be refusal says on this backend.
func (r ExecRefusal) MonitorEvent(want map[string]any) map[string]any {
	out := r.with(want)
	out["ocigate.enforced"] = false
	out["ocigate.verdict"] = "would-deny"
	return out
}

func (r ExecRefusal) with(want map[string]any) map[string]any {
	out := map[string]any{"process_kprobe.action": r.Action(), "ocigate.backend": r.Backend}
	for k, v := range want {
		out[k] = v
	}
	return out
}

// exitKilled is the status of a process killed by SIGKILL (128 + 9).
const exitKilled = 137

// CheckExit checks the exit status of the program whose exec the agent
// refused and says which outcome it saw. Under the fallback the status
// is 137. Under LSM and fmod_ret it is callerCode, what the calling
// program exits with when its execve fails, and output (what the test
// saw it print; "" when its error goes where the test does not look,
// e.g. into a socket) names EPERM.
func (r ExecRefusal) CheckExit(code int, output string, callerCode int) (string, error) {
	if r.Kills() {
		if code != exitKilled {
			return "", fmt.Errorf("exec point on %s: want the program SIGKILLed at exec (exit 137), got exit %d", r.Backend, code)
		}
		return "SIGKILL at exec (exit 137, fallback)", nil
	}
	if code == exitKilled {
		return "", fmt.Errorf("exec point on %s: want execve refused with EPERM in the caller (its exit %d), but it was SIGKILLed (exit 137)",
			r.Backend, callerCode)
	}
	if code != callerCode {
		return "", fmt.Errorf("exec point on %s: want the caller's own exit %d after its execve failed with EPERM, got exit %d",
			r.Backend, callerCode, code)
	}
	if output != "" && !strings.Contains(strings.ToLower(output), "operation not permitted") {
		return "", fmt.Errorf("exec point on %s: the caller exited %d without naming EPERM (operation not permitted): %q", r.Backend, code, output)
	}
	return fmt.Sprintf("execve failed with EPERM in the caller, which exited %d (%s)", code, r.Backend), nil
}

// RelayKill says how a relayed shell was stopped, from its enforced
// relay event: SIGKILLed at its exec (its peer had connected), or, when
// the peer connected after it, that connect refused and the shell killed
// by the agent through a pidfd. Both are kills on every backend.
func RelayKill(ev map[string]any) (string, error) {
	point, _ := agentlog.Field(ev, "ocigate.point")
	verdict, _ := agentlog.Field(ev, "ocigate.verdict")
	relay, _ := agentlog.Field(ev, "ocigate.relay")
	how, _ := relay.(string)
	if point != "relay" || verdict != "killed" || how == "" {
		return "", fmt.Errorf("not a relayed shell's kill: point %v, verdict %v, relay %v", point, verdict, relay)
	}
	kind, atConnect := strings.CutSuffix(how, ",at_connect")
	if kind != "parent" && kind != "pipe" {
		return "", fmt.Errorf("relay %q: want parent or pipe, optionally ,at_connect", how)
	}
	if atConnect {
		return "peer's connect refused, the shell killed by the agent (relay " + kind + ", at connect)", nil
	}
	return "the shell SIGKILLed at its exec (relay " + kind + ", peer connected first)", nil
}
