package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/agentconfig"
	"github.com/ocigate/ocigate/internal/testenv"
)

// podman with the hooks.d files: a container run from an image gets the
// profile of its image, which the agent reads from podman's records (the
// OCI spec podman writes names no image), and its events carry the image
// and the container's name.
func TestPodmanImageProfile(t *testing.T) {
	requireE2E(t)
	ag := startExtraAgent(t, map[string]string{"by-image.yaml": byImageProfile}, func(cfg *agentconfig.Config) {
		cfg.RuncRoots, cfg.ContainerdSocket = nil, ""
	})
	pm := newPrivatePodman(t, t.TempDir())
	const image = "localhost/ocigate-e2e/podman:3"
	pm.importImage(t, image)
	hooks := filepath.Join(t.TempDir(), "hooks.d")
	if err := testenv.WriteHooksDir(hooks, hookBin, hookArgs(ag.socket, "createRuntime"), hookArgs(ag.socket, "poststop")); err != nil {
		t.Fatal(err)
	}
	name := newID("podman-image")
	out, _ := run(t, testenv.PodmanPath, pm.cmd("run", "--rm", "--name", name, "--runtime", testenv.RuncPath, "--cgroup-manager", "cgroupfs",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "host", "--log-driver", "none",
		"--hooks-dir", hooks, "--cgroup-parent", cgroupParent, image, "/probe", "connect", deniedAddr)...)
	if strings.TrimSpace(out) != "error: operation not permitted" {
		t.Errorf("the container's first connect: %q, want EPERM", out)
	}
	ag.waitEvent(t, map[string]any{"ocigate.profile": "by-image", "ocigate.runtime": "podman", "ocigate.verdict": "denied",
		"process_kprobe.process.pod.container.image.name": image, "process_kprobe.process.pod.container.name": name})
}
