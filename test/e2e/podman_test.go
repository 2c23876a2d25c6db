package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv"
)

// podmanEnv is a rootfs and a hooks.d directory for podman scenarios.
type podmanEnv struct {
	rootfs   string
	hooksDir string
}

func newPodmanEnv(t *testing.T) podmanEnv {
	t.Helper()
	testenv.NeedTools(t, testenv.PodmanPath)
	dir := t.TempDir()
	e := podmanEnv{rootfs: filepath.Join(dir, "rootfs"), hooksDir: filepath.Join(dir, "hooks.d")}
	if err := testenv.BuildRootfs(e.rootfs, map[string]string{"/probe": probeBin}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WriteHooksDir(e.hooksDir, hookBin,
		hookArgs(socketPath, "createRuntime"), hookArgs(socketPath, "poststop")); err != nil {
		t.Fatal(err)
	}
	return e
}

// run runs args in a podman container with the ocigate hooks (or without
// any when noHooks) and returns the outcome with the full container ID.
func (e podmanEnv) run(t *testing.T, noHooks bool, args ...string) ctrResult {
	t.Helper()
	p := testenv.PodmanRun{Rootfs: e.rootfs, Args: args, CgroupParent: cgroupParent}
	if !noHooks {
		p.HooksDir = e.hooksDir
	}
	res, err := testenv.RunPodman(context.Background(), p, 60*time.Second)
	r := ctrResult{ID: res.ID, Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}
	t.Logf("podman %v", r)
	if res.ID != "" {
		t.Cleanup(func() {
			if err := testenv.RemoveCgroup(cgroupParent + "/libpod-" + res.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("podman run: %v", err)
	}
	if r.ID == "" {
		t.Fatalf("podman wrote no container ID; %v", r)
	}
	return r
}

func TestPodmanDeniedFirstConnect(t *testing.T) {
	requireE2E(t)
	e := newPodmanEnv(t)
	res := e.run(t, false, "/probe", "connect", deniedAddr)
	if strings.TrimSpace(res.Stdout) != "error: operation not permitted" || res.ExitCode != 1 {
		t.Errorf("want the connect denied with EPERM; got %v", res)
	}
	waitEvent(t, res.ID, deniedConnect(res.ID, "127.0.0.2", 4444))
	if ids := workloads(t); contains(ids, res.ID) {
		t.Errorf("podman container %s still registered after it exited: %v", res.ID, ids)
	}
}

func TestPodmanReverseShell(t *testing.T) {
	requireE2E(t)
	e := newPodmanEnv(t)
	t.Run("control-unprotected", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
		res := e.run(t, true, reverseShellArgs(ln.Port())...)
		if !ln.WaitReceived(reverseShellAnswer, 5*time.Second) {
			t.Fatalf("unprotected reverse shell did not answer %q (received %q); %v",
				reverseShellAnswer, ln.Received(), res)
		}
	})
	t.Run("protected", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
		res := e.run(t, false, reverseShellArgs(ln.Port())...)
		if ln.WaitReceived(reverseShellAnswer, 2*time.Second) {
			t.Errorf("the attacker got a shell: listener received %q; %v", ln.Received(), res)
		}
		checkExecExit(t, res, res.ExitCode, res.Stderr, busyboxNcExecFailed)
		waitExecRefused(t, res.ID, shellExec(res.ID, ""))
	})
}
