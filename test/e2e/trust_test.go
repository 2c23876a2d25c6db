package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/agentconfig"
	"github.com/ocigate/ocigate/internal/testenv"
)

// Hostile workloads (docs/trust.md): a container that asks for the
// monitor profile, one that asks for fail-open while the agent is down,
// one that claims another image's name, one that claims another pod's
// namespace — on podman, containerd (ctr) and Docker. Each is refused,
// or runs under the profile its real identity selects, with an event;
// the real debug image gets the operator's monitor profile. Kubernetes
// is not run here.

// The images: the operator's debug image and a plain one, both the
// shared busybox rootfs (and /probe).
const (
	debugImage = "registry.internal/debug/tool:1"
	plainImage = "localhost/ocigate-e2e/plain:1"
)

// trustProfiles is the setup: debug-monitor (monitor mode) for
// the images of registry.internal/debug/, and debug-ns, which only pods
// of namespace debug may choose.
const trustProfiles = `apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata: {name: debug-monitor}
spec:
  match: {images: ["registry.internal/debug/*"]}
  mode: monitor
  policies: [{name: reverse-shell}]
---
apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata: {name: debug-ns}
spec:
  match: {annotations: [{key: ocigate.io/profile, equals: debug-ns}]}
  mode: monitor
  policies: [{name: reverse-shell}]
  selectableBy: {namespaces: [debug]}
`

// Annotations of the hostile containers.
var (
	asksMonitor   = map[string]string{"ocigate.io/profile": "debug-monitor"}
	asksFailOpen  = map[string]string{"ocigate.io/failure-policy": "open"}
	claimsImage   = map[string]string{"io.kubernetes.cri.image-name": debugImage, "ocigate.io/image": debugImage}
	claimsPodNSOf = map[string]string{"io.kubernetes.cri.sandbox-namespace": "debug", "io.kubernetes.pod.namespace": "debug",
		"ocigate.io/profile": "debug-ns"}
)

// hostileAgent starts an agent that trusts no annotation (the default),
// with trustProfiles, reading hook reports from reports.
func hostileAgent(t *testing.T, reports string, configure func(*agentconfig.Config)) *extraAgent {
	t.Helper()
	return startExtraAgent(t, map[string]string{"trust.yaml": trustProfiles}, func(cfg *agentconfig.Config) {
		cfg.TrustedAnnotations, cfg.HookReports = nil, reports
		cfg.RuncRoots, cfg.ContainerdSocket = nil, ""
		if configure != nil {
			configure(cfg)
		}
	})
}

// annotationArgs are flag, key=value pairs in key order.
func annotationArgs(flag string, annotations map[string]string) []string {
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		args = append(args, flag, k+"="+annotations[k])
	}
	return args
}

// mustBeRefused checks a run that the hook refused: it failed, its error
// names what, and the attacker's listener saw nothing.
func mustBeRefused(t *testing.T, out string, err error, ln interface{ WaitConn(time.Duration) bool }, what ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("the container ran: %s", out)
	}
	for _, w := range what {
		if !strings.Contains(out, w) {
			t.Errorf("the runtime's error does not say %q:\n%s", w, out)
		}
	}
	if ln != nil && ln.WaitConn(500*time.Millisecond) {
		t.Errorf("the refused container's process ran: the listener got a connection")
	}
}

// refusedClaim is the event of a claim the agent refused.
func refusedClaim(key, requested string) map[string]any {
	return map[string]any{"ocigate_claim.action": "refused", "ocigate_claim.claims.0.key": key,
		"ocigate_claim.requested_profile": requested, "ocigate_claim.reported_by": "agent", "ocigate.verdict": "refused"}
}

// ignoredImageClaim is the event of a claimed image the agent ignored for
// a container that runs under the default e2e profile.
func ignoredImageClaim() map[string]any {
	return map[string]any{"ocigate_claim.action": "ignored", "ocigate_claim.requested_profile": "debug-monitor",
		"ocigate_claim.profile": "e2e", "ocigate_claim.claims.0.value": debugImage}
}

// hookRefusedFailOpen is the event the agent reports for the fail-open
// claim a hook refused while no agent answered.
func hookRefusedFailOpen() map[string]any {
	return map[string]any{"ocigate_claim.action": "refused", "ocigate_claim.reported_by": "hook",
		"ocigate_claim.claims.0.key": "ocigate.io/failure-policy", "ocigate_claim.claims.0.value": "open"}
}

// Refusal texts the runtimes pass on from the hook.
const (
	refusedMonitor   = "annotation ocigate.io/profile=debug-monitor chose profile"
	refusedNamespace = "annotation io.kubernetes.cri.sandbox-namespace=debug"
	refusedFailOpen  = "annotation ocigate.io/failure-policy=open refused"
)

func TestTrustPodman(t *testing.T) {
	requireE2E(t)
	reports := filepath.Join(t.TempDir(), "reports")
	ag := hostileAgent(t, reports, nil)
	pm := newPrivatePodman(t, t.TempDir())
	pm.importImage(t, plainImage)
	pm.importImage(t, debugImage)
	hooks := filepath.Join(t.TempDir(), "hooks.d")
	if err := testenv.WriteHooksDir(hooks, hookBin, hookArgs(ag.socket, "createRuntime", "--report-dir", reports),
		hookArgs(ag.socket, "poststop")); err != nil {
		t.Fatal(err)
	}
	down := filepath.Join(t.TempDir(), "down.d")
	dead := filepath.Join(t.TempDir(), "dead.sock")
	if err := testenv.WriteHooksDir(down, hookBin, hookArgs(dead, "createRuntime", "--report-dir", reports), hookArgs(dead, "poststop")); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, hooksDir, name, image string, annotations map[string]string, args ...string) (string, error) {
		cmd := pm.cmd("run", "--rm", "--name", name, "--runtime", testenv.RuncPath, "--cgroup-manager", "cgroupfs",
			"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "host", "--log-driver", "none",
			"--hooks-dir", hooksDir, "--cgroup-parent", cgroupParent)
		cmd = append(append(cmd, annotationArgs("--annotation", annotations)...), image)
		return runCmd(t, testenv.PodmanPath, append(cmd, args...)...)
	}
	trustCases(t, ag, trustRunner{runtime: "podman", hooks: hooks, down: down, run: run, nameField: "process_kprobe.process.pod.container.name"})
}

// trustRunner runs a container of one runtime: with the hooks of the
// hostile agent (hooks) or of no agent (down).
type trustRunner struct {
	runtime     string
	hooks, down string
	// nameField is the event field that holds the name run was given:
	// the container's name, or for ctr its ID.
	nameField string
	run       func(t *testing.T, hooks, name, image string, annotations map[string]string, args ...string) (string, error)
}

// trustCases are the hostile cases, and the real debug image, on one
// runtime.
func trustCases(t *testing.T, ag *extraAgent, r trustRunner) {
	t.Run("real-debug-image-gets-monitor", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
		name := newID("trust-debug")
		out, _ := r.run(t, r.hooks, name, debugImage, nil, reverseShellArgs(ln.Port())...)
		if !ln.WaitReceived(reverseShellAnswer, 5*time.Second) {
			t.Errorf("under the operator's monitor profile the shell should answer; got %q: %s", ln.Received(), out)
		}
		ag.waitEvent(t, map[string]any{"ocigate.profile": "debug-monitor", "ocigate.verdict": "would-deny", "ocigate.runtime": r.runtime,
			r.nameField: name, "process_kprobe.process.pod.container.image.name": debugImage})
	})
	t.Run("asks-for-monitor-profile", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
		name := newID("trust-asks")
		out, err := r.run(t, r.hooks, name, plainImage, asksMonitor, reverseShellArgs(ln.Port())...)
		mustBeRefused(t, out, err, ln, refusedMonitor, "mode monitor instead of enforce")
		ag.waitEvent(t, refusedClaim("ocigate.io/profile", "debug-monitor"))
	})
	t.Run("claims-another-image", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
		name := newID("trust-image")
		out, _ := r.run(t, r.hooks, name, plainImage, claimsImage, reverseShellArgs(ln.Port())...)
		if ln.WaitReceived(reverseShellAnswer, 2*time.Second) {
			t.Errorf("the attacker got a shell: %q: %s", ln.Received(), out)
		}
		ag.waitEvent(t, ignoredImageClaim())
		ag.waitEvent(t, map[string]any{"ocigate.profile": "e2e", "ocigate.enforced": true, "process_kprobe.function_name": "security_bprm_check",
			r.nameField: name, "process_kprobe.process.pod.container.image.name": plainImage})
	})
	t.Run("claims-another-pod-namespace", func(t *testing.T) {
		out, err := r.run(t, r.hooks, newID("trust-ns"), plainImage, claimsPodNSOf, "/bin/true")
		mustBeRefused(t, out, err, nil, refusedNamespace, "is the container's own claim")
		ag.waitEvent(t, refusedClaim("ocigate.io/profile", "debug-ns"))
	})
	t.Run("asks-for-fail-open-agent-down", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", "")
		out, err := r.run(t, r.down, newID("trust-open"), plainImage, asksFailOpen, "/probe", "connect", ln.Addr())
		mustBeRefused(t, out, err, ln, refusedFailOpen)
		ag.waitEvent(t, hookRefusedFailOpen())
	})
}

// runCmd runs name args, bounded by a minute, and returns its output.
func runCmd(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := run(t, name, args...)
	t.Logf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	return out, err
}

func TestTrustContainerd(t *testing.T) {
	requireE2E(t)
	c := startContainerd(t)
	c.importImage(t, plainImage)
	c.importImage(t, debugImage)
	reports := filepath.Join(t.TempDir(), "reports")
	ag := hostileAgent(t, reports, func(cfg *agentconfig.Config) { cfg.ContainerdSocket = c.socket })
	run := func(t *testing.T, wrapper, name, image string, annotations map[string]string, args ...string) (string, error) {
		t.Cleanup(func() { c.removeContainer(t, name) })
		cmd := append([]string{"run", "--rm", "--runc-binary", wrapper, "--runc-root", c.runcRoot, "--net-host",
			"--cgroup", cgroupParent + "/" + name}, annotationArgs("--annotation", annotations)...)
		out, err := c.ctr(append(append(cmd, image, name), args...)...)
		t.Logf("ctr run %s: %v\n%s", name, err, out)
		return out, err
	}
	trustCases(t, ag, trustRunner{runtime: "containerd", run: run, nameField: "ocigate.container_id",
		hooks: trustWrapper(t, ag.socket, reports), down: trustWrapper(t, filepath.Join(t.TempDir(), "dead.sock"), reports)})
}

// trustWrapper is a runc for `ctr run --runc-binary`: the Docker wrapper
// (ctr passes no runtime arguments) whose hook dials socket and leaves
// its reports in reports.
func trustWrapper(t *testing.T, socket, reports string) string {
	t.Helper()
	dir := t.TempDir()
	hook := filepath.Join(dir, "ocigate-hook")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\nexec "+hookBin+" --report-dir "+reports+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "runc")
	body := fmt.Sprintf("#!/bin/sh\nexec %s --ocigate-runc=%s --ocigate-hook=%s --ocigate-socket=%s --ocigate-runtime-name=containerd \"$@\"\n",
		buildWrapper(t), testenv.RuncPath, hook, socket)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// Docker 20.10 has no annotations: what a container's spec can say —
// labels — never reaches the OCI spec, so the hostile labels change
// nothing; the image comes from dockerd's records. The real debug image
// gets the monitor profile; a container whose labels claim the rest runs
// under the default profile, its reverse shell refused; with the agent
// down it is refused, labels or not.
func TestTrustDocker(t *testing.T) {
	requireE2E(t)
	d := newDockerEnv(t)
	ag := hostileAgent(t, filepath.Join(t.TempDir(), "reports"), func(cfg *agentconfig.Config) { cfg.DockerRoot = d.dataRoot })
	d.start(t, map[string]string{"ocigate": dockerRuntime(t, ag.socket), "ocigate-down": dockerRuntime(t, filepath.Join(t.TempDir(), "dead.sock"))})
	d.importImage(t, plainImage)
	d.importImage(t, debugImage)
	run := func(t *testing.T, runtime, name, image string, labels map[string]string, args ...string) (string, error) {
		cmd := append([]string{"run", "--rm", "--runtime", runtime, "--network", "host", "--name", name, "--cgroup-parent", cgroupParent},
			annotationArgs("--label", labels)...)
		out, err := d.docker(append(append(cmd, image), args...)...)
		t.Logf("docker run %s: %v\n%s", name, err, out)
		return out, err
	}
	t.Run("real-debug-image-gets-monitor", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
		name := newID("trust-debug")
		out, _ := run(t, "ocigate", name, debugImage, nil, reverseShellArgs(ln.Port())...)
		if !ln.WaitReceived(reverseShellAnswer, 5*time.Second) {
			t.Errorf("under the operator's monitor profile the shell should answer; got %q: %s", ln.Received(), out)
		}
		ag.waitEvent(t, map[string]any{"ocigate.profile": "debug-monitor", "ocigate.verdict": "would-deny", "ocigate.runtime": "docker",
			"process_kprobe.process.pod.container.name": name, "process_kprobe.process.pod.container.image.name": debugImage})
	})
	labels := map[string]string{}
	for _, m := range []map[string]string{asksMonitor, claimsImage, claimsPodNSOf, asksFailOpen} {
		maps.Copy(labels, m)
	}
	t.Run("labels-claim-everything", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
		name := newID("trust-labels")
		out, _ := run(t, "ocigate", name, plainImage, labels, reverseShellArgs(ln.Port())...)
		if ln.WaitReceived(reverseShellAnswer, 2*time.Second) {
			t.Errorf("the attacker got a shell: %q: %s", ln.Received(), out)
		}
		ag.waitEvent(t, map[string]any{"ocigate.profile": "e2e", "ocigate.enforced": true, "process_kprobe.function_name": "security_bprm_check",
			"process_kprobe.process.pod.container.name": name, "process_kprobe.process.pod.container.image.name": plainImage})
	})
	t.Run("agent-down", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", "")
		out, err := run(t, "ocigate-down", newID("trust-down"), plainImage, labels, "/probe", "connect", ln.Addr())
		mustBeRefused(t, out, err, ln, "refused (fail-closed)")
	})
}
