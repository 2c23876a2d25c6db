package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/agent"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/runtime/oci"
)

// runMainEnv makes the test binary run the hook's main instead of the
// tests: TestStdinNeverEndsWithinDeadline runs the hook as its own
// process, which its watchdog ends.
const runMainEnv = "OCIGATE_HOOK_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// A runtime that never closes the hook's stdin does not hold the
// container's start beyond --timeout: the hook's watchdog ends the
// process, fail-closed unless --fail-open; poststop gives up and exits 0.
func TestStdinNeverEndsWithinDeadline(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agentd.sock")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"createRuntime"}, 1, "ocigate-hook: container ? refused (fail-closed): no result within the hook's --timeout\n"},
		{[]string{"--fail-open", "createRuntime"}, 0,
			"ocigate-hook: WARNING: fail-open (--fail-open): container ? starts UNPROTECTED: no result within the hook's --timeout\n"},
		{[]string{"poststop"}, 0, "ocigate-hook: poststop: no result within the hook's --timeout (ignored)\n"},
	} {
		pr, pw, err := os.Pipe() // nothing is ever written; closed only once the hook ended
		if err != nil {
			t.Fatal(err)
		}
		// Killed after 5s: a hook that waits for its stdin fails the test
		// rather than hang it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"--socket", socket, "--timeout", "300ms"}, tc.args...)...)
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		var stderr strings.Builder
		cmd.Stdin, cmd.Stderr = pr, &stderr
		start := time.Now()
		err = cmd.Run()
		took := time.Since(start)
		cancel()
		pr.Close()
		pw.Close()
		code := cmd.ProcessState.ExitCode()
		if (err != nil) != (tc.code != 0) || code != tc.code || stderr.String() != tc.want {
			t.Errorf("%v: exit %d (%v), stderr %q; want %d and %q", tc.args, code, err, stderr.String(), tc.code, tc.want)
		}
		if took > time.Second {
			t.Errorf("%v: took %v with --timeout 300ms", tc.args, took)
		}
	}
}

// When the agent refuses a registration after choosing the profile, the
// failure policy of its answer decides (the agent weighs the container's
// annotation: TestFailurePolicyAnnotation in internal/agent), unless the
// flag says open.
func TestProfileFailurePolicy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   string
		args     []string
		stateAnn map[string]string
		code     int
		want     string
	}{
		{"profile open", api.FailOpen, nil, nil, 0, "fail-open (the profile's failurePolicy)"},
		{"profile closed", api.FailClosed, nil, nil, 1, "fail-closed"},
		{"profile unknown", "", nil, nil, 1, "fail-closed"},
		{"the annotation is the agent's to weigh", api.FailClosed, []string{"--allow-fail-open-annotation"},
			map[string]string{oci.AnnotationFailurePolicy: "open"}, 1, "fail-closed"},
		{"flag opens a closed profile", api.FailClosed, []string{"--fail-open"}, nil, 0, "fail-open (--fail-open)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var refusal error = errors.New("workloads map full")
			if tc.policy != "" {
				refusal = &api.PolicyError{Err: refusal, FailurePolicy: tc.policy}
			}
			socket := startAgent(t, &fakeAgent{fail: refusal})
			args := append(append([]string{"--socket", socket}, tc.args...), "createRuntime")
			code, stderr := runHook(args, bundle(t, "c1", os.Getpid(), nil, tc.stateAnn))
			if code != tc.code || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "workloads map full") {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.want)
			}
		})
	}
}

// A profile that needs an enforcement point the agent's kernel does not
// enforce: the hook's one stderr line names the point and the reason;
// closed refuses the container, open lets it start and says it is
// unprotected.
func TestUnavailablePointRefusal(t *testing.T) {
	refusal := &agent.UnavailableError{Container: "c1", Profile: "reverse-shell", Points: []string{"exec"},
		Reasons: []string{"no backend could attach: lsm: bpf is not active; fallback: EPERM"}}
	for _, tc := range []struct {
		policy string
		code   int
		want   string
	}{
		{api.FailClosed, 1, "ocigate-hook: container c1 refused (fail-closed): "},
		{api.FailOpen, 0, "ocigate-hook: WARNING: fail-open (the profile's failurePolicy): container c1 starts UNPROTECTED: "},
	} {
		socket := startAgent(t, &fakeAgent{fail: &api.PolicyError{Err: refusal, FailurePolicy: tc.policy}})
		code, stderr := runHook([]string{"--socket", socket, "createRuntime"}, bundle(t, "c1", os.Getpid(), nil, nil))
		want := tc.want + `agent refused register: container "c1": profile "reverse-shell" needs enforcement point exec, unavailable on this kernel: ` +
			"no backend could attach: lsm: bpf is not active; fallback: EPERM\n"
		if code != tc.code || stderr != want {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", tc.policy, code, stderr, tc.code, want)
		}
	}
}
