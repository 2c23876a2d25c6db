package k8s

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssOf returns the resident memory (KiB) of the one host process whose
// command line holds every part.
func rssOf(t *testing.T, parts ...string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		s := string(cmd)
		all := true
		for _, p := range parts {
			all = all && strings.Contains(s, p)
		}
		if !all {
			continue
		}
		status, err := os.ReadFile(d + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.Atoi(f[1])
				return kb
			}
		}
	}
	t.Fatalf("no process with %q", parts)
	return 0
}

// TestScaleOtherNodesPods creates 5 000 pods bound to other nodes in the
// real API server: ocigate-kube watches only its node's pods, so its
// memory and the agent's stay where they were.
func TestScaleOtherNodesPods(t *testing.T) {
	const pods, batch = 5000, 500
	ns := namespace(t, cluster.prefix+"-scale")
	t.Cleanup(func() {
		_, _ = kubectlErr("", "-n", ns, "delete", "pods", "--all", "--force", "--grace-period=0", "--wait=false")
	})
	kubeArgs := []string{"/ocigate-kube", cluster.runDir + "/agentd.sock"}
	agentArgs := []string{"/ocigate-agentd", "--socket=" + cluster.runDir + "/agentd.sock"}
	kubeBefore, agentBefore := rssOf(t, kubeArgs...), rssOf(t, agentArgs...)
	start := time.Now()
	for i := 0; i < pods; i += batch {
		items := make([]any, 0, batch)
		for j := i; j < i+batch; j++ {
			items = append(items, map[string]any{"apiVersion": "v1", "kind": "Pod",
				"metadata": map[string]any{"name": fmt.Sprintf("p%d", j), "labels": map[string]string{"app": "web"}},
				"spec": map[string]any{"nodeName": fmt.Sprintf("%s-ghost-%d", cluster.prefix, j%50),
					"containers": []any{map[string]any{"name": "c", "image": "localhost/" + cluster.prefix + "/pause:1"}}}})
		}
		b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
		kubectl(t, string(b), "-n", ns, "create", "-f", "-", "-o", "name")
	}
	t.Logf("created %d pods on 50 other nodes in %v", pods, time.Since(start).Round(time.Millisecond))
	time.Sleep(10 * time.Second)
	kubeAfter, agentAfter := rssOf(t, kubeArgs...), rssOf(t, agentArgs...)
	t.Logf("ocigate-kube RSS %d KiB -> %d KiB; agent RSS %d KiB -> %d KiB", kubeBefore, kubeAfter, agentBefore, agentAfter)
	// Decoding 5 000 pods of a watch and caching them takes several MiB;
	// without any of them RSS moves by less than a page or two.
	if kubeAfter > kubeBefore+2*1024 {
		t.Errorf("ocigate-kube grew by %d KiB with pods of other nodes", kubeAfter-kubeBefore)
	}
	if agentAfter > agentBefore+4*1024 {
		t.Errorf("the agent grew by %d KiB with pods of other nodes", agentAfter-agentBefore)
	}
}
