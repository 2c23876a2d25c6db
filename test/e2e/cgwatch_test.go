package e2e

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// A container started with the createRuntime hook only (--no-poststop) is
// unregistered when it stops, by the agent's cgroup watch: its cgroup
// empties, runc removes it, and the agent drops the workload within a
// fraction of the periodic check's interval, which is the same as
// Unregister (map entry, record and watch all go).
func TestCreateRuntimeOnlyUnregisteredOnStop(t *testing.T) {
	requireE2E(t)
	id := newID("nopoststop")
	bundle := t.TempDir()
	b := bundleFor(id, ctrOpts{Name: "nopoststop", Args: []string{"/bin/sh", "-c", "/probe connect " + deniedAddr}})
	b.Poststop = nil
	if err := testenv.WriteBundle(bundle, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupContainer(t, id) })
	stdout, stderr, code, err := testenv.RunRunc(context.Background(), bundle, id, containerTimeout)
	if err != nil {
		t.Fatalf("running container: %v (stdout %q stderr %q)", err, stdout, stderr)
	}
	stopped := time.Now()
	if !strings.Contains(stdout, "error: operation not permitted") {
		t.Errorf("want the connect denied while registered; got exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	took := waitUnregistered(t, id, 5*time.Second)
	line := droppedLine(t, id)
	if !strings.Contains(line, `"seen_by_cgroup_watch": true`) {
		t.Errorf("workload %s dropped %v after its container stopped, not by the cgroup watch: %s\nagent log:\n%s", id, took, line, agentlog.Tail(agentLog, 30))
	}
	t.Logf("dropped %v after runc run returned: %s", time.Since(stopped), line)
}

// droppedLine is the agent's log line that dropped container id.
func droppedLine(t *testing.T, id string) string {
	t.Helper()
	data, err := os.ReadFile(agentLog)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := json.Marshal(id)
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "workload dropped") && strings.Contains(l, `"container": `+string(key)) {
			return l
		}
	}
	t.Fatalf("no \"workload dropped\" line for %s in the agent's log\n%s", id, diagnostics(id))
	return ""
}
