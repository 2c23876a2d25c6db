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

// usage is what a process has used so far: resident memory and bytes
// read (rchar: files and sockets, its watch streams included).
type usage struct{ rssKiB, readBytes int }

// usageOf returns the usage of the one host process whose command line
// holds every part.
func usageOf(t *testing.T, parts ...string) usage {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(string(cmd), p)
		}
		if !all {
			continue
		}
		var u usage
		u.rssKiB = procField(t, d+"/status", "VmRSS:")
		u.readBytes = procField(t, d+"/io", "rchar:")
		return u
	}
	t.Fatalf("no process with %q", parts)
	return usage{}
}

func procField(t *testing.T, file, key string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatalf("%s: no %s", file, key)
	return 0
}

// TestScaleOtherNodesPods creates 5 000 pods bound to other nodes in the
// real API server: ocigate-kube watches only its node's pods, so its
// memory and the agent's stay where they were.
func TestScaleOtherNodesPods(t *testing.T) {
	const pods, batch = 5000, 500
	// The namespace's deletion at the end leaves the pods of nodes that
	// have no kubelet terminating until the cluster goes: deleting 5 000
	// one by one would take minutes of make k8stest.
	ns := namespace(t, cluster.prefix+"-scale")
	kubeArgs := []string{"/ocigate-kube", cluster.runDir + "/agentd.sock"}
	agentArgs := []string{"/ocigate-agentd", "--socket=" + cluster.runDir + "/agentd.sock"}
	kubeBefore, agentBefore := usageOf(t, kubeArgs...), usageOf(t, agentArgs...)
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
	kubeAfter, agentAfter := usageOf(t, kubeArgs...), usageOf(t, agentArgs...)
	t.Logf("ocigate-kube RSS %d KiB -> %d KiB, read %d bytes meanwhile; agent RSS %d KiB -> %d KiB",
		kubeBefore.rssKiB, kubeAfter.rssKiB, kubeAfter.readBytes-kubeBefore.readBytes, agentBefore.rssKiB, agentAfter.rssKiB)
	// Decoding 5 000 pods of a watch and caching them takes several MiB;
	// without any of them RSS moves by less than a page or two.
	if kubeAfter.rssKiB > kubeBefore.rssKiB+2*1024 {
		t.Errorf("ocigate-kube grew by %d KiB with pods of other nodes", kubeAfter.rssKiB-kubeBefore.rssKiB)
	}
	if agentAfter.rssKiB > agentBefore.rssKiB+4*1024 {
		t.Errorf("the agent grew by %d KiB with pods of other nodes", agentAfter.rssKiB-agentBefore.rssKiB)
	}
	// Each pod's watch event is a kilobyte or more: 5 000 would be
	// megabytes read.
	if read := kubeAfter.readBytes - kubeBefore.readBytes; read > 256*1024 {
		t.Errorf("ocigate-kube read %d bytes while pods of other nodes were created: it watches them", read)
	}
}
