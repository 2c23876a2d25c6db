package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/agentconfig"
	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// ContainerdPath and CtrPath are Debian's containerd 1.6 and its CLI.
var (
	ContainerdPath = "/usr/bin/containerd"
	CtrPath        = "/usr/bin/ctr"
)

// containerdEnv is a containerd of the test's own: socket, root and state
// directories below the work dir, no CRI plugin.
type containerdEnv struct {
	dir, socket, runcRoot string
	ns                    string
}

// startContainerd starts a containerd of t's own and stops it, and its
// shims, when t ends.
func startContainerd(t *testing.T) *containerdEnv {
	t.Helper()
	testenv.NeedTools(t, ContainerdPath, CtrPath)
	dir, err := os.MkdirTemp(workDir, "ctd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerdEnv{dir: dir, socket: filepath.Join(dir, "containerd.sock"), runcRoot: filepath.Join(dir, "runc"), ns: "ocigate-e2e"}
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  address = ""
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.socket, c.socket+".ttrpc", filepath.Join(dir, "opt"))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(ContainerdPath, "-c", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = stopProcess(cmd, done, syscall.SIGTERM, 15*time.Second)
		c.killShims(t)
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.ctr("version"); err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd not ready in 20s:\n%s", agentlog.Tail(filepath.Join(dir, "containerd.log"), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ctr runs `ctr -a SOCKET -n NAMESPACE args...` bounded by a minute.
func (c *containerdEnv) ctr(args ...string) (string, error) {
	cmd := exec.Command("timeout", append([]string{"-k", "5", "60", CtrPath, "-a", c.socket, "-n", c.ns}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// removeContainer kills and deletes a container's task and the container.
func (c *containerdEnv) removeContainer(t *testing.T, id string) {
	_, _ = c.ctr("task", "kill", "-s", "KILL", id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := c.ctr("task", "delete", "-f", id)
		if err == nil || strings.Contains(out, "not found") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, err := c.ctr("container", "delete", id); err != nil && !strings.Contains(out, "not found") {
		t.Errorf("cleanup: ctr container delete %s: %v: %s", id, err, out)
	}
	_ = testenv.RemoveCgroup(cgroupParent + "/" + id)
}

// killShims ends the shims this containerd started that outlived it.
func (c *containerdEnv) killShims(t *testing.T) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte("containerd-shim")) && bytes.Contains(cmdline, []byte(c.socket)) {
			t.Logf("cleanup: killing leftover shim %d", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// importImage imports an OCI archive of the shared rootfs as ref.
func (c *containerdEnv) importImage(t *testing.T, ref string) {
	t.Helper()
	tarball := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.WriteOCIArchive(f, ref, rootfsDir); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := c.ctr("image", "import", tarball); err != nil {
		t.Fatalf("ctr image import: %v: %s", err, out)
	}
}

// wrapperScript is a runc for `ctr run --runc-binary`: the Docker wrapper
// with its options for this agent (ctr passes no runtime arguments).
func wrapperScript(t *testing.T, socket string) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "runc")
	body := fmt.Sprintf("#!/bin/sh\nexec %s --ocigate-runc=%s --ocigate-hook=%s --ocigate-socket=%s --ocigate-runtime-name=containerd \"$@\"\n",
		buildWrapper(t), testenv.RuncPath, hookBin, socket)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// specFile writes a full runtime spec for `ctr run --config` (rootfs the
// shared one) with the createRuntime hook for socket and, when poststop,
// the poststop hook.
func specFile(t *testing.T, id, socket string, poststop bool, annotations map[string]string, args ...string) string {
	t.Helper()
	b := bundleFor(id, ctrOpts{Name: "ctd", Args: args, Socket: socket, Annotations: annotations})
	if !poststop {
		b.Poststop = nil
	}
	spec, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Debian's containerd 1.6 with the hook: the image of a container run
// from an imported image comes from containerd's metadata and selects
// its profile; a spec given with --config selects by the ocigate.io/image
// annotation; a container whose shim is SIGKILLed (no poststop) is
// unregistered on containerd's task exit event.
func TestContainerd(t *testing.T) {
	requireE2E(t)
	c := startContainerd(t)
	const image = "localhost/ocigate-e2e/ctd:1"
	c.importImage(t, image)
	// Only containerd's events unregister here: no periodic check.
	ag := startExtraAgent(t, map[string]string{"by-image.yaml": byImageProfile}, func(cfg *agentconfig.Config) {
		cfg.ContainerdSocket, cfg.RuncRoots, cfg.ReconcileInterval = c.socket, nil, 0
	})

	t.Run("image-from-metadata", func(t *testing.T) {
		id := newID("ctd-image")
		t.Cleanup(func() { c.removeContainer(t, id) })
		out, err := c.ctr("run", "-d", "--runc-binary", wrapperScript(t, ag.socket), "--runc-root", c.runcRoot, "--net-host",
			"--cgroup", cgroupParent+"/"+id, image, id, "/bin/sleep", "60")
		if err != nil {
			t.Fatalf("ctr run: %v: %s\nagent log:\n%s", err, out, agentlog.Tail(ag.log, 20))
		}
		w := ag.waitWorkload(t, id, 10*time.Second)
		if w.Runtime != "containerd" || w.Image != image || w.ImageSource != "containerd" || w.Profile != "by-image" ||
			!strings.Contains(w.ProfileReason, image) || w.Adopted {
			t.Errorf("workload %+v", w)
		}
		out, _ = c.ctr("task", "exec", "--exec-id", "probe", id, "/probe", "connect", deniedAddr)
		if strings.TrimSpace(out) != "error: operation not permitted" {
			t.Errorf("connect from the container: %q, want EPERM", out)
		}
		ag.waitEvent(t, map[string]any{"ocigate.container_id": id, "ocigate.profile": "by-image", "ocigate.verdict": "denied",
			"ocigate.runtime": "containerd", "process_kprobe.process.pod.container.image.name": image})
		// Stopping it the ordinary way: the task exit event (or poststop) unregisters it.
		c.removeContainer(t, id)
		ag.waitNoWorkload(t, id, 10*time.Second)
	})

	t.Run("config-annotation", func(t *testing.T) {
		id := newID("ctd-config")
		t.Cleanup(func() { c.removeContainer(t, id) })
		spec := specFile(t, id, ag.socket, true, map[string]string{"ocigate.io/image": "localhost/ocigate-e2e/annotated:2"},
			"/probe", "connect", deniedAddr)
		out, _ := c.ctr("run", "--rm", "--runc-root", c.runcRoot, "--config", spec, id)
		if strings.TrimSpace(out) != "error: operation not permitted" {
			t.Errorf("first connect of a ctr run --config container: %q, want EPERM\nagent log:\n%s", out, agentlog.Tail(ag.log, 20))
		}
		ag.waitEvent(t, map[string]any{"ocigate.container_id": id, "ocigate.profile": "by-image", "ocigate.verdict": "denied",
			"ocigate.runtime": "containerd"})
	})

	t.Run("shim-killed", func(t *testing.T) {
		id := newID("ctd-shim")
		t.Cleanup(func() { c.removeContainer(t, id) })
		spec := specFile(t, id, ag.socket, false, nil, "/bin/sleep", "60")
		if out, err := c.ctr("run", "-d", "--runc-root", c.runcRoot, "--config", spec, id); err != nil {
			t.Fatalf("ctr run: %v: %s", err, out)
		}
		w := ag.waitWorkload(t, id, 10*time.Second)
		shim := parentOf(t, w.Pid)
		comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(shim), "comm"))
		if !strings.HasPrefix(string(comm), "containerd-shim") {
			t.Fatalf("the init's parent %d is %q, not the shim", shim, comm)
		}
		before, err := ag.status()
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(shim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		took := ag.waitNoWorkload(t, id, 15*time.Second)
		after, err := ag.status()
		if err != nil {
			t.Fatal(err)
		}
		oneDrop(t, before.Counters, after.Counters)
		t.Logf("unregistered %v after the shim was SIGKILLed", took.Round(time.Millisecond))
	})
}

// oneDrop checks that one prompt way dropped the workload, whichever came
// first (the periodic check is off): containerd's task exit event, or the
// agent's cgroup watch once the shim's death took the init and its
// cgroup.
func oneDrop(t *testing.T, before, after map[string]uint64) {
	t.Helper()
	events := after["runtime_event_unregistrations"] - before["runtime_event_unregistrations"]
	watched := after["workloads_reconciled"] - before["workloads_reconciled"]
	if events+watched != 1 {
		t.Errorf("runtime_event_unregistrations went up by %d and workloads_reconciled (the cgroup watch) by %d, want 1 in all",
			events, watched)
	}
}

// parentOf returns a process's parent pid.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...
	i := bytes.LastIndexByte(data, ')')
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		t.Fatalf("stat of %d: %q", pid, data)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(errors.Join(err, fmt.Errorf("stat of %d: %q", pid, data)))
	}
	return ppid
}
