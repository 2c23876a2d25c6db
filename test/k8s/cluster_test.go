// Package k8s is make k8stest: ocigate installed with Helm on a real
// single-node cluster (scripts/k8s-cluster.sh), policies applied with
// kubectl, pods stopped. It runs only with OCIGATE_K8S=1 and the
// cluster's environment (KUBECONFIG, K8S_NODE, K8S_VALUES, K8S_PREFIX);
// scripts/k8stest.sh sets them up and tears the cluster down.
package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// env is what scripts/k8stest.sh passes.
type env struct {
	node, values, prefix, ns, eventsFile, runDir string
}

var cluster env

func TestMain(m *testing.M) {
	if os.Getenv("OCIGATE_K8S") != "1" {
		fmt.Println("skipped: set OCIGATE_K8S=1 (make k8stest)")
		os.Exit(0)
	}
	cluster = env{node: os.Getenv("K8S_NODE"), values: os.Getenv("K8S_VALUES"), prefix: os.Getenv("K8S_PREFIX"),
		eventsFile: os.Getenv("K8S_EVENTS_FILE"), runDir: os.Getenv("K8S_RUN_DIR")}
	cluster.ns = cluster.prefix + "-ocigate"
	os.Exit(m.Run())
}

// kubectl runs kubectl with stdin and returns its stdout; a failure is
// fatal.
func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := kubectlErr(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func kubectlErr(stdin string, args ...string) (string, error) {
	cmd := exec.Command("kubectl", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// eventually polls fn until it returns nil or timeout passes; then
// each of explain adds what it says to the failure.
func eventually(t *testing.T, timeout time.Duration, what string, fn func() error, explain ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, e := range explain {
		t.Log(e())
	}
	t.Fatalf("%s: not within %v: %v", what, timeout, err)
}

// daemonSetLogs is the tail of both containers' logs of the DaemonSet's
// pod, for a failure message.
func daemonSetLogs() string {
	var b strings.Builder
	for _, c := range []string{"agent", "kube"} {
		out, err := kubectlErr("", "-n", cluster.ns, "logs", "daemonset/ocigate", "-c", c, "--tail", "40")
		fmt.Fprintf(&b, "%s container's log (tail; %v):\n%s\n", c, err, out)
	}
	return b.String()
}

// namespace creates a namespace removed at the test's end.
func namespace(t *testing.T, name string) string {
	t.Helper()
	kubectl(t, "", "create", "namespace", name)
	t.Cleanup(func() { _, _ = kubectlErr("", "delete", "namespace", name, "--wait=false") })
	return name
}

// podSpec is a one-container pod that runs script under shell.
type podSpec struct {
	ns, name, image, shell, script string
	labels, annotations            map[string]string
	hostNetwork                    bool
	restartPolicy                  string // default Never
}

func (p podSpec) manifest() string {
	if p.restartPolicy == "" {
		p.restartPolicy = "Never"
	}
	m := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": p.name, "namespace": p.ns, "labels": p.labels, "annotations": p.annotations},
		"spec": map[string]any{
			"hostNetwork": p.hostNetwork, "restartPolicy": p.restartPolicy, "terminationGracePeriodSeconds": 1,
			"containers": []any{map[string]any{"name": "c", "image": "localhost/" + cluster.prefix + "/" + p.image + ":1",
				"command": []string{p.shell, "-c", p.script}}},
		},
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// run creates the pod and returns once it ended: its container's exit
// code and its log.
func run(t *testing.T, p podSpec) (int, string) {
	t.Helper()
	kubectl(t, p.manifest(), "apply", "-f", "-")
	var code int
	eventually(t, 90*time.Second, "pod "+p.ns+"/"+p.name+" ends", func() error {
		out, err := kubectlErr("", "-n", p.ns, "get", "pod", p.name, "-o", "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}")
		if err != nil || out == "" {
			return fmt.Errorf("still running (%v)", err)
		}
		_, err = fmt.Sscan(out, &code)
		return err
	})
	logs, _ := kubectlErr("", "-n", p.ns, "logs", p.name)
	return code, logs
}

// events returns the agent's events that concern a pod.
func events(t *testing.T, ns, pod string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(cluster.eventsFile)
	if err != nil {
		t.Fatalf("events file: %v", err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(data, []byte("\n")) {
		if !bytes.Contains(line, []byte(`"`+pod+`"`)) {
			continue
		}
		var ev map[string]any
		if json.Unmarshal(line, &ev) != nil {
			continue
		}
		for _, v := range ev {
			if body, ok := v.(map[string]any); ok {
				if p := field(body, "process", "pod"); p != nil && field(p, "name") == pod && field(p, "namespace") == ns {
					out = append(out, body)
				}
			}
		}
	}
	return out
}

// field walks nested maps and lists (a number indexes a list).
func field(m any, path ...string) any {
	for _, k := range path {
		switch v := m.(type) {
		case map[string]any:
			m = v[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i < 0 || i >= len(v) {
				return nil
			}
			m = v[i]
		default:
			return nil
		}
	}
	return m
}

// waitEvent waits for an event of the pod whose fields hold want.
func waitEvent(t *testing.T, ns, pod string, want map[string]string) map[string]any {
	t.Helper()
	var found map[string]any
	eventually(t, 20*time.Second, fmt.Sprintf("event of %s/%s with %v", ns, pod, want), func() error {
		for _, ev := range events(t, ns, pod) {
			ok := true
			for k, v := range want {
				if fmt.Sprint(field(ev, strings.Split(k, ".")...)) != v {
					ok = false
					break
				}
			}
			if ok {
				found = ev
				return nil
			}
		}
		return fmt.Errorf("none yet among the pod's events:\n%s", describeEvents(events(t, ns, pod)))
	}, daemonSetLogs)
	return found
}

// policyLoaded waits until ocigate-kube reports the object loaded on
// the node; it returns how long that took.
func policyLoaded(t *testing.T, resource, ns, name string) time.Duration {
	t.Helper()
	start := time.Now()
	args := []string{"get", resource, name, "-o", "jsonpath={.status.nodes." + cluster.node + ".state} {.status.nodes." + cluster.node + ".message}"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	eventually(t, 60*time.Second, resource+" "+name+" loaded", func() error {
		out, err := kubectlErr("", args...)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(out, "loaded") {
			return fmt.Errorf("status %q", out)
		}
		return nil
	})
	return time.Since(start)
}

// describeEvents is one line per event, for a failure message: what a
// test waited for among what came.
func describeEvents(evs []map[string]any) string {
	var b strings.Builder
	for _, ev := range evs {
		line, _ := json.Marshal(ev)
		b.Write(line)
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return "(none)"
	}
	return b.String()
}
