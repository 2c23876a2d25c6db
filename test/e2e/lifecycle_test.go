package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv"
)

// The workload is registered while the container runs and poststop removes
// it when the container exits.
func TestPoststopUnregisters(t *testing.T) {
	requireE2E(t)
	id := newID("poststop")
	bundle := t.TempDir()
	// The denied connect proves the container was registered; the sleep
	// keeps it running while the agent's status is read.
	script := "/probe connect " + deniedAddr + "; sleep 3"
	b := bundleFor(id, ctrOpts{Name: "poststop", Args: []string{"/bin/sh", "-c", script}})
	if err := testenv.WriteBundle(bundle, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupContainer(t, id) })

	type outcome struct {
		res ctrResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		stdout, stderr, code, err := testenv.RunRunc(context.Background(), bundle, id, containerTimeout)
		done <- outcome{ctrResult{ID: id, Stdout: stdout, Stderr: stderr, ExitCode: code}, err}
	}()

	seen := false
	deadline := time.Now().Add(3 * time.Second)
	for !seen && time.Now().Before(deadline) {
		seen = contains(workloads(t), id)
		if !seen {
			time.Sleep(100 * time.Millisecond)
		}
	}
	o := <-done
	t.Logf("%v", o.res)
	if o.err != nil {
		t.Fatalf("running container: %v", o.err)
	}
	if !seen {
		t.Errorf("workload %s never listed by `ocigate-agentd status` while running\n%s", id, diagnostics(id))
	}
	if !strings.Contains(o.res.Stdout, "error: operation not permitted") {
		t.Errorf("want the connect denied while registered; got %v", o.res)
	}
	if ids := workloads(t); contains(ids, id) {
		t.Errorf("workload %s still registered after the container exited (poststop): workloads %v\n%s", id, ids, diagnostics(id))
	}
}

func TestAgentDown(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	// missing: no socket file at all; stale: a socket file nobody listens on
	// (what a crashed agent leaves behind).
	missing := filepath.Join(dir, "missing.sock")
	stale := filepath.Join(dir, "stale.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	dead := missing
	for name, sock := range map[string]string{"fail-closed-missing": missing, "fail-closed-stale": stale} {
		t.Run(name, func(t *testing.T) {
			ln := listen(t, "127.0.0.1:0", "")
			res := runContainer(t, ctrOpts{Name: "agent-down", Socket: sock, Args: []string{"/probe", "connect", ln.Addr()}})
			if res.ExitCode == 0 || strings.Contains(res.Stdout, "ok") {
				t.Errorf("the container ran although the agent is unreachable; %v", res)
			}
			if !strings.Contains(res.Stderr, "ocigate") {
				t.Errorf("runc's error does not mention ocigate; %v", res)
			}
			if ln.WaitConn(time.Second) {
				t.Errorf("the container process ran: listener got a connection")
			}
		})
	}
	t.Run("fail-open", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", "")
		hookLog := filepath.Join(t.TempDir(), "hook.log")
		res := runContainer(t, ctrOpts{
			Name: "fail-open", Socket: dead, HookExtra: []string{"--fail-open"}, HookWrap: hookLog,
			Args: []string{"/probe", "connect", ln.Addr()},
		})
		if strings.TrimSpace(res.Stdout) != "ok" || res.ExitCode != 0 {
			t.Errorf("with --fail-open the container must start; %v", res)
		}
		logData, err := os.ReadFile(hookLog)
		if err != nil {
			t.Fatalf("hook stderr log: %v", err)
		}
		t.Logf("hook stderr: %s", logData)
		if !strings.Contains(string(logData), "fail-open") {
			t.Errorf("the hook did not warn about fail-open; its stderr: %q", logData)
		}
	})
}

// Only root may talk to the agent: the agent checks SO_PEERCRED, not just
// the socket's file mode.
func TestNonRootPeerRejected(t *testing.T) {
	requireE2E(t)
	root := runProbeAPI(t, nil)
	if strings.TrimSpace(root) != "ok" {
		t.Fatalf("control: root's status request was not answered ok: %q", root)
	}
	st, err := os.Stat(socketPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("agent socket mode: %v", st.Mode())
	if err := os.Chmod(socketPath, 0o666); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Chmod(socketPath, st.Mode().Perm()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	out := runProbeAPI(t, &syscall.Credential{Uid: 65534, Gid: 65534})
	switch {
	case strings.HasPrefix(out, "ok"):
		t.Errorf("the agent answered a status request from uid 65534: %q", out)
	case strings.HasPrefix(out, "refused:"), strings.HasPrefix(out, "closed:"):
		t.Logf("uid 65534 rejected: %s", strings.TrimSpace(out))
	default:
		t.Errorf("uid 65534 could not even connect, so SO_PEERCRED was not exercised: %q", out)
	}
	if _, err := agentStatus(); err != nil {
		t.Errorf("the agent stopped serving root after rejecting a peer: %v", err)
	}
}

// runProbeAPI runs `probe api SOCKET` on the host, as cred if not nil, and
// returns its stdout.
func runProbeAPI(t *testing.T, cred *syscall.Credential) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, probeBin, "api", socketPath)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("running probe api: %v (stderr %q)", err, stderr.String())
	}
	return stdout.String()
}
