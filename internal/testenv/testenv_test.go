package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv/peer"
)

// These tests exercise the harness itself against the real runc and podman.
// They run only with OCIGATE_E2E=1 (as root); then a missing prerequisite
// is a failure, not a skip.

func requireE2E(t *testing.T) {
	t.Helper()
	if os.Getenv("OCIGATE_E2E") != "1" {
		t.Skip("real-container harness tests need OCIGATE_E2E=1 (root, runc, podman)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("OCIGATE_E2E=1 but not running as root")
	}
	NeedTools(t, RuncPath, BusyboxPath, "timeout", "go")
}

// buildProbe builds test/e2e/probe statically into dir.
func buildProbe(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "probe")
	cmd := exec.Command("go", "build", "-o", out, "../../test/e2e/probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building probe: %v\n%s", err, b)
	}
	return out
}

// probeRootfs builds the probe into dir and a root file system at rootfs
// holding it as /probe, and starts a loopback listener for it to connect
// to (closed when t ends).
func probeRootfs(t *testing.T, dir, rootfs string) *peer.Listener {
	t.Helper()
	probe := buildProbe(t, dir)
	if err := BuildRootfs(rootfs, map[string]string{"/probe": probe}); err != nil {
		t.Fatal(err)
	}
	ln, err := peer.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// recorderHook writes a hook script that appends its stdin (the OCI state)
// plus a newline to the file named by its first argument.
func recorderHook(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "record-hook")
	script := "#!/bin/sh\nset -e\n{ cat; echo; } >> \"$1\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func readStates(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("hook did not run: %v", err)
	}
	var states []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var st map[string]any
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			t.Fatalf("hook state %q: %v", line, err)
		}
		states = append(states, st)
	}
	t.Logf("hook states recorded in %s:\n%s", path, data)
	return states
}

func TestRuncProbeAndHooks(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	ln := probeRootfs(t, dir, filepath.Join(bundle, "rootfs"))
	hook := recorderHook(t, dir)
	id := fmt.Sprintf("testenv-%d", time.Now().UnixNano())
	created, stopped := filepath.Join(dir, "createRuntime.json"), filepath.Join(dir, "poststop.json")
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	b := Bundle{
		Args:          []string{"/probe", "connect", ln.Addr()},
		HostNetwork:   true,
		CgroupsPath:   "/ocigate-testenv/" + id,
		Annotations:   map[string]string{"io.ocigate.test": "1"},
		CreateRuntime: []Hook{{Path: hook, Args: []string{"record-hook", created}, Env: env, Timeout: 10}},
		Poststop:      []Hook{{Path: hook, Args: []string{"record-hook", stopped}, Env: env, Timeout: 10}},
	}
	if err := WriteBundle(bundle, b); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := RemoveCgroup("/ocigate-testenv"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}()
	stdout, stderr, code, err := RunRunc(context.Background(), bundle, id, 30*time.Second)
	if err != nil || code != 0 || strings.TrimSpace(stdout) != "ok" {
		t.Fatalf("runc run: err=%v code=%d stdout=%q stderr=%q", err, code, stdout, stderr)
	}
	if !ln.WaitConn(5 * time.Second) {
		t.Fatal("listener saw no connection")
	}
	for _, st := range readStates(t, created) {
		if st["id"] != id || st["bundle"] != bundle {
			t.Errorf("createRuntime state has id=%v bundle=%v, want %s %s", st["id"], st["bundle"], id, bundle)
		}
		t.Logf("createRuntime status=%v pid=%v", st["status"], st["pid"])
	}
	for _, st := range readStates(t, stopped) {
		t.Logf("poststop status=%v pid=%v", st["status"], st["pid"])
	}

	// Exit codes come through.
	b = Bundle{Args: []string{"/bin/sh", "-c", "exit 3"}, HostNetwork: true, CgroupsPath: "/ocigate-testenv/" + id}
	if err := WriteBundle(bundle, b); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code, err := RunRunc(context.Background(), bundle, id, 30*time.Second); err != nil || code != 3 {
		t.Fatalf("exit 3 container: err=%v code=%d stderr=%q", err, code, stderr)
	}
	// Raw sockets are possible without ocigate (CAP_NET_RAW).
	b.Args = []string{"/probe", "raw"}
	if err := WriteBundle(bundle, b); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code, err := RunRunc(context.Background(), bundle, id, 30*time.Second); err != nil || code != 0 || strings.TrimSpace(out) != "ok" {
		t.Fatalf("raw socket: err=%v code=%d stdout=%q stderr=%q", err, code, out, stderr)
	}
	// A timeout is reported as such.
	b.Args = []string{"/bin/sleep", "60"}
	if err := WriteBundle(bundle, b); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := RunRunc(context.Background(), bundle, id, 2*time.Second); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("sleeping container: want timeout error, got %v", err)
	}
}

func TestPodmanProbeAndHooks(t *testing.T) {
	requireE2E(t)
	NeedTools(t, PodmanPath)
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	ln := probeRootfs(t, dir, rootfs)
	hook := recorderHook(t, dir)
	created, stopped := filepath.Join(dir, "createRuntime.json"), filepath.Join(dir, "poststop.json")
	hooksDir := filepath.Join(dir, "hooks.d")
	if err := WriteHooksDir(hooksDir, hook, []string{"record-hook", created}, []string{"record-hook", stopped}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := RemoveCgroup("/ocigate-testenv"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}()
	res, err := RunPodman(context.Background(), PodmanRun{
		Rootfs: rootfs, Args: []string{"/probe", "connect", ln.Addr()},
		HooksDir: hooksDir, CgroupParent: "/ocigate-testenv",
	}, 60*time.Second)
	if err != nil || res.ExitCode != 0 || strings.TrimSpace(res.Stdout) != "ok" {
		t.Fatalf("podman run: err=%v res=%+v", err, res)
	}
	if len(res.ID) != 64 {
		t.Errorf("container id %q is not a full podman id", res.ID)
	}
	for _, st := range readStates(t, created) {
		if st["id"] != res.ID {
			t.Errorf("createRuntime state id=%v, want %s", st["id"], res.ID)
		}
		t.Logf("podman createRuntime status=%v pid=%v", st["status"], st["pid"])
	}
	for _, st := range readStates(t, stopped) {
		t.Logf("podman poststop status=%v pid=%v", st["status"], st["pid"])
	}
}
