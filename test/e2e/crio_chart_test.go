package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// chartPod is the part of the chart's DaemonSet this test reads.
type chartPod struct {
	Kind string
	Spec struct {
		Template struct {
			Spec struct {
				InitContainers []struct {
					Name         string
					Command      []string
					VolumeMounts []struct{ Name, MountPath string }
				}
				Volumes []struct {
					Name     string
					HostPath *struct{ Path string }
				}
			}
		}
	}
}

// renderCRIOChart renders deploy/ocigate with runtime.name crio (go tool
// helm template), its host paths under host, and returns the DaemonSet.
func renderCRIOChart(t *testing.T, host string) chartPod {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "helm", "template", "ocigate", filepath.Join(root, "deploy/ocigate"),
		"--set", "runtime.name=crio", "--set", "runtime.crio.hookDir="+filepath.Join(host, "opt/ocigate/bin"),
		"--set", "runtime.crio.hooksDir="+filepath.Join(host, "hooks.d"), "--set", "host.runDir="+filepath.Dir(socketPath))
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	for _, doc := range bytes.Split(out, []byte("\n---")) {
		var ds chartPod
		if yaml.Unmarshal(doc, &ds) == nil && ds.Kind == "DaemonSet" {
			return ds
		}
	}
	t.Fatalf("helm template rendered no DaemonSet:\n%s", out)
	return chartPod{}
}

// TestCRIOChartInstallsHooks: the chart's CRI-O init container, its
// command as `go tool helm template` renders it, run on this host
// against a temporary directory, puts ocigate-hook there and writes the
// hooks.d files; podman reads hooks.d as CRI-O does (the same library,
// oci-hooks(5)), runs the hook from them, and the real agent registers
// the container: its first connect is denied.
func TestCRIOChartInstallsHooks(t *testing.T) {
	requireE2E(t)
	e := newPodmanEnv(t)
	host := t.TempDir()
	ds := renderCRIOChart(t, host)
	pod := ds.Spec.Template.Spec
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].Name != "install-hook" {
		t.Fatalf("want one init container install-hook, got %+v", pod.InitContainers)
	}
	init := pod.InitContainers[0]
	// Each host directory is mounted at its own path, so what the command
	// writes names the host's paths, and running it here is what the init
	// container does.
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	for _, m := range init.VolumeMounts {
		if hostPaths[m.Name] != m.MountPath {
			t.Fatalf("volume %s is mounted at %s, its host path is %q", m.Name, m.MountPath, hostPaths[m.Name])
		}
	}
	// The image's binaries (/ocigate-agentd, /ocigate-hook) are the ones
	// built for this run.
	argv := strings.Join(init.Command, "\n")
	argv = strings.NewReplacer("/ocigate-agentd\n", agentdBin+"\n", "=/ocigate-hook\n", "="+hookBin+"\n").Replace(argv + "\n")
	args := strings.Split(strings.TrimSuffix(argv, "\n"), "\n")
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("init container's command %q: %v\n%s", args, err, out)
	}
	installed := filepath.Join(host, "opt/ocigate/bin/ocigate-hook")
	want, _ := os.ReadFile(hookBin)
	if got, err := os.ReadFile(installed); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the hook was not copied to %s (%v)", installed, err)
	}
	var hook struct{ Hook struct{ Path string } }
	b, err := os.ReadFile(filepath.Join(host, "hooks.d/ocigate-createRuntime.json"))
	if err != nil || json.Unmarshal(b, &hook) != nil || hook.Hook.Path != installed {
		t.Fatalf("hooks.d file (%v): %s", err, b)
	}
	e.hooksDir = filepath.Join(host, "hooks.d")
	res := e.run(t, false, "/probe", "connect", deniedAddr)
	if strings.TrimSpace(res.Stdout) != "error: operation not permitted" || res.ExitCode != 1 {
		t.Errorf("want the connect denied with EPERM; got %v", res)
	}
	waitEvent(t, res.ID, deniedConnect(res.ID, "127.0.0.2", 4444))
}
