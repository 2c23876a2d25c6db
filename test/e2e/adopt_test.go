package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/internal/agentconfig"
	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// byImageProfile is chosen for the images the e2e builds.
const byImageProfile = `apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata: {name: by-image}
spec:
  match: {images: ["localhost/ocigate-e2e/*"]}
  mode: enforce
  policies: [{name: e2e-stand-in-attacker}]
`

// startDetached runs name args with stdio on /dev/null (a detached
// container keeps runc's stdio) and fails the test on error.
func startDetached(t *testing.T, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, readFile(t, out))
	}
	return strings.TrimSpace(string(readFile(t, out)))
}

// runcRootContainer starts a container without any hook in a private
// runc root and removes it at the end.
func runcRootContainer(t *testing.T, root, name string) string {
	t.Helper()
	id := newID(name)
	bundle := t.TempDir()
	if err := testenv.WriteBundle(bundle, bundleFor(id, ctrOpts{Name: name, NoHook: true, Args: []string{"/bin/sleep", "120"}})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := run(t, testenv.RuncPath, "--root", root, "delete", "-f", id); err != nil && !strings.Contains(out, "does not exist") {
			t.Errorf("cleanup: runc delete %s: %v: %s", id, err, out)
		}
		if err := testenv.RemoveCgroup(cgroupParent + "/" + id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	startDetached(t, testenv.RuncPath, "--root", root, "run", "-d", "--bundle", bundle, id)
	return id
}

// privatePodman is podman with its own storage and runc root, so that
// nothing of it mixes with the machine's other containers.
type privatePodman struct {
	global []string
}

func newPrivatePodman(t *testing.T, runcRoot string) privatePodman {
	t.Helper()
	testenv.NeedTools(t, testenv.PodmanPath)
	dir, err := os.MkdirTemp(workDir, "podman-")
	if err != nil {
		t.Fatal(err)
	}
	// --tmpdir too: podman's default (/run/libpod) is every podman's.
	p := privatePodman{global: []string{"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--runtime-flag", "root=" + runcRoot}}
	t.Cleanup(func() {
		if out, err := run(t, testenv.PodmanPath, p.cmd("rmi", "--all", "--force")...); err != nil {
			t.Logf("cleanup: podman rmi: %v: %s", err, out)
		}
		// The overlay driver makes its home a private mount and does not
		// always take it down: unmount it, or the work directory cannot
		// be removed (EINVAL: it was not a mount).
		home := filepath.Join(dir, "storage", "overlay")
		if err := unix.Unmount(home, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("cleanup: unmount %s: %v", home, err)
		}
	})
	return p
}

func (p privatePodman) cmd(args ...string) []string {
	return append(append([]string(nil), p.global...), args...)
}

// rootfsTarball writes the shared rootfs (busybox and /probe) as a tar
// file, what podman import and docker import take, and returns its path.
func rootfsTarball(t *testing.T) string {
	t.Helper()
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testenv.TarDir(f, rootfsDir); err != nil {
		t.Fatal(err)
	}
	return tarball
}

// importImage makes image ref from the shared rootfs (busybox and /probe).
func (p privatePodman) importImage(t *testing.T, ref string) {
	t.Helper()
	tarball := rootfsTarball(t)
	if out, err := run(t, testenv.PodmanPath, p.cmd("import", tarball, ref)...); err != nil {
		t.Fatalf("podman import: %v: %s", err, out)
	}
}

// runDetached starts image with sleep, no hooks, and returns its ID.
func (p privatePodman) runDetached(t *testing.T, image string) string {
	t.Helper()
	id := startDetached(t, testenv.PodmanPath, p.cmd("run", "-d", "--runtime", testenv.RuncPath, "--cgroup-manager", "cgroupfs",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "host", "--log-driver", "none",
		"--hooks-dir", filepath.Join(workDir, "no-hooks"), "--cgroup-parent", cgroupParent, image, "/bin/sleep", "120")...)
	t.Cleanup(func() {
		if out, err := run(t, testenv.PodmanPath, p.cmd("rm", "-f", "-t", "0", id)...); err != nil {
			t.Errorf("cleanup: podman rm: %v: %s", err, out)
		}
		_ = testenv.RemoveCgroup(cgroupParent + "/libpod-" + id)
	})
	return id
}

// Containers started without the hook before the agent — plain runc and
// podman, both in a private runc root — are adopted when it starts: each
// gets the profile it selects (the podman one by its image, read from
// podman's records), status and events say adopted, and a connect to
// the stand-in attacker that worked before the agent is refused after.
func TestAdoptRunningContainers(t *testing.T) {
	requireE2E(t)
	root := t.TempDir()
	plain := runcRootContainer(t, root, "adopt-runc")
	pm := newPrivatePodman(t, root)
	const image = "localhost/ocigate-e2e/adopt:1"
	pm.importImage(t, image)
	podID := pm.runDetached(t, image)

	ln := listen(t, "127.0.0.2:0", "")
	connect := func(id string, podman bool) string {
		t.Helper()
		var out string
		if podman {
			out, _ = run(t, testenv.PodmanPath, pm.cmd("exec", id, "/probe", "connect", ln.Addr())...)
		} else {
			out, _ = run(t, testenv.RuncPath, "--root", root, "exec", id, "/probe", "connect", ln.Addr())
		}
		return strings.TrimSpace(out)
	}
	if out := connect(plain, false); out != "ok" {
		t.Fatalf("control: before the agent the runc container's connect must work: %q", out)
	}
	if out := connect(podID, true); out != "ok" {
		t.Fatalf("control: before the agent the podman container's connect must work: %q", out)
	}

	ag := startExtraAgent(t, map[string]string{"by-image.yaml": byImageProfile}, func(cfg *agentconfig.Config) {
		cfg.RuncRoots, cfg.RuncBinary, cfg.ContainerdSocket = []string{root}, testenv.RuncPath, ""
	})
	w := ag.waitWorkload(t, plain, 10*time.Second)
	if !w.Adopted || w.Runtime != "runc" || w.Profile != "e2e" || w.Pid <= 0 {
		t.Errorf("runc container: %+v", w)
	}
	w = ag.waitWorkload(t, podID, 10*time.Second)
	if !w.Adopted || w.Runtime != "podman" || w.Image != image || w.ImageSource != "podman" || w.Profile != "by-image" ||
		!strings.Contains(w.ProfileReason, image) {
		t.Errorf("podman container: %+v", w)
	}
	st, err := ag.status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Counters["workloads_adopted"] != 2 {
		t.Errorf("workloads_adopted = %d", st.Counters["workloads_adopted"])
	}

	for _, c := range []struct {
		id     string
		podman bool
	}{{plain, false}, {podID, true}} {
		if out := connect(c.id, c.podman); out != "error: operation not permitted" {
			t.Errorf("container %s after adoption: connect %q, want EPERM", c.id, out)
		}
		ev := ag.waitEvent(t, map[string]any{"ocigate.container_id": c.id, "ocigate.verdict": "denied", "ocigate.adopted": true})
		if c.podman && ev != nil {
			if got := ev["process_kprobe"].(map[string]any)["process"].(map[string]any)["pod"].(map[string]any)["container"].(map[string]any)["image"]; got.(map[string]any)["name"] != image {
				t.Errorf("podman event's image %v", got)
			}
		}
	}
	if !strings.Contains(string(readFile(t, ag.log)), "adopted a running container late") {
		t.Errorf("the agent's log does not warn about the late adoption:\n%s", agentlog.Tail(ag.log, 20))
	}

	// Killed without poststop (there is no hook): the periodic check drops it.
	if out, err := run(t, testenv.RuncPath, "--root", root, "kill", plain, "KILL"); err != nil {
		t.Fatalf("runc kill: %v: %s", err, out)
	}
	took := ag.waitNoWorkload(t, plain, 3*reconcileInterval+3*time.Second)
	t.Logf("adopted container dropped %v after SIGKILL", took.Round(time.Millisecond))
}
