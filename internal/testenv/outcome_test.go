package testenv

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// Each backend's documented outcome passes, and only it.
func TestExecRefusalCheckExit(t *testing.T) {
	for _, tc := range []struct {
		backend    string
		code       int
		output     string
		callerCode int
		want       string // outcome seen; "" for an error
	}{
		{BackendFallback, 137, "", 1, "SIGKILL at exec"},
		{BackendFallback, 1, "nc: can't execute '/bin/sh': Operation not permitted", 1, ""},
		{BackendFallback, 0, "", 1, ""},
		{BackendLSM, 1, "nc: can't execute '/bin/sh': Operation not permitted", 1, "execve failed with EPERM in the caller, which exited 1 (lsm)"},
		{BackendFmodRet, 1, "error: operation not permitted\n", 1, "which exited 1 (fmod_ret)"},
		{BackendLSM, 126, "", 126, "which exited 126 (lsm)"}, // its error went into the socket
		{BackendLSM, 137, "", 1, ""}, // killed, not refused
		{BackendLSM, 0, "", 1, ""},   // the caller's exec worked
		{BackendFmodRet, 1, "error: permission denied", 1, ""},
	} {
		r, err := NewExecRefusal(tc.backend)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.CheckExit(tc.code, tc.output, tc.callerCode)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s, exit %d, output %q: passed as %q, want an error", tc.backend, tc.code, tc.output, got)
		case tc.want != "" && (err != nil || !strings.Contains(got, tc.want)):
			t.Errorf("%s, exit %d, output %q: %q, %v; want %q", tc.backend, tc.code, tc.output, got, err, tc.want)
		case err != nil && !strings.Contains(err.Error(), tc.backend):
			t.Errorf("%s: error does not name the backend: %v", tc.backend, err)
		}
	}
	if _, err := NewExecRefusal("none"); err == nil {
		t.Error("the unavailable exec point refuses execs")
	}
}

// The events each backend's refusal is reported with.
func TestExecRefusalEvents(t *testing.T) {
	base := map[string]any{"ocigate.container_id": "c1", "process_kprobe.function_name": "security_bprm_check"}
	fb, lsm := ExecRefusal{BackendFallback}, ExecRefusal{BackendLSM}
	if got := fb.Event(base); !reflect.DeepEqual(got, map[string]any{"ocigate.container_id": "c1", "process_kprobe.function_name": "security_bprm_check",
		"process_kprobe.action": "KPROBE_ACTION_SIGKILL", "ocigate.backend": "fallback", "ocigate.enforced": true, "ocigate.verdict": "killed"}) {
		t.Errorf("fallback event %v", got)
	}
	if got := lsm.Event(base); !reflect.DeepEqual(got, map[string]any{"ocigate.container_id": "c1", "process_kprobe.function_name": "security_bprm_check",
		"process_kprobe.action": "KPROBE_ACTION_OVERRIDE", "ocigate.backend": "lsm", "ocigate.enforced": true, "ocigate.verdict": "denied",
		"ocigate.errno": 1}) {
		t.Errorf("lsm event %v", got)
	}
	if got := lsm.MonitorEvent(base); got["process_kprobe.action"] != "KPROBE_ACTION_OVERRIDE" || got["ocigate.verdict"] != "would-deny" ||
		got["ocigate.enforced"] != false || got["ocigate.errno"] != nil {
		t.Errorf("lsm monitor event %v", got)
	}
	if len(base) != 2 {
		t.Errorf("Event changed its argument: %v", base)
	}
	// A real event of each kind matches, and not the other's.
	fallbackEv := map[string]any{"process_kprobe": map[string]any{"function_name": "security_bprm_check", "action": "KPROBE_ACTION_SIGKILL"},
		"ocigate": map[string]any{"container_id": "c1", "enforced": true, "verdict": "killed", "backend": "fallback"}}
	lsmEv := map[string]any{"process_kprobe": map[string]any{"function_name": "security_bprm_check", "action": "KPROBE_ACTION_OVERRIDE"},
		"ocigate": map[string]any{"container_id": "c1", "enforced": true, "verdict": "denied", "backend": "lsm", "errno": float64(1)}}
	match := agentlog.Match
	if !match(fallbackEv, fb.Event(base)) || match(lsmEv, fb.Event(base)) || !match(lsmEv, lsm.Event(base)) || match(fallbackEv, lsm.Event(base)) {
		t.Error("events do not match their backend's expectation only")
	}
}

func TestExecBackend(t *testing.T) {
	st := `{"backends":[{"point":"tracking","backend":"tracepoint"},{"point":"exec","backend":"lsm","mechanism":"lsm/bprm_check_security"}]}`
	if b, err := ExecBackend([]byte(st)); err != nil || b != "lsm" {
		t.Fatalf("ExecBackend = %q, %v", b, err)
	}
	for _, bad := range []string{`{"backends":[]}`, `{"backends":[{"point":"exec","backend":"none","error":"no backend could attach: x"}]}`, `nope`} {
		if b, err := ExecBackend([]byte(bad)); err == nil {
			t.Errorf("ExecBackend(%s) = %q", bad, b)
		}
	}
}

func TestRelayKill(t *testing.T) {
	ev := func(relay, verdict string) map[string]any {
		return map[string]any{"ocigate": map[string]any{"point": "relay", "verdict": verdict, "relay": relay}}
	}
	for _, tc := range []struct {
		ev   map[string]any
		want string
	}{
		{ev("parent", "killed"), "SIGKILLed at its exec (relay parent"},
		{ev("pipe,at_connect", "killed"), "peer's connect refused, the shell killed by the agent (relay pipe"},
		{ev("pipe", "would-deny"), ""},
		{ev("", "killed"), ""},
		{ev("sibling", "killed"), ""},
		{map[string]any{"ocigate": map[string]any{"point": "exec", "verdict": "killed", "relay": "parent"}}, ""},
	} {
		got, err := RelayKill(tc.ev)
		if (tc.want == "") != (err != nil) || !strings.Contains(got, tc.want) {
			t.Errorf("RelayKill(%v) = %q, %v; want %q", tc.ev, got, err, tc.want)
		}
	}
}
