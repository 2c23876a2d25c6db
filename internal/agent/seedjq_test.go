package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/jqcheck"
	"github.com/ocigate/ocigate/internal/testenv"
)

// testdata/jq/stream.jsonl was written by a real agent during
// test/e2e's TestProcessEventsReverseShellMonitor (OCIGATE_E2E_RECORD=1):
// python3 and bash reverse shells and a bind shell's listen in monitor
// mode, with their process_exec and process_exit events.
func recordedStream(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "jq", "stream.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every seed filter runs on the recorded stream without a jq error,
// selects something, and reads no null.
func TestSeedJQFiltersOnRecordedStream(t *testing.T) {
	testenv.NeedTools(t, "jq")
	stream := recordedStream(t)
	res, err := jqcheck.CheckDir(filepath.Join("testdata", "jq"), stream)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil || r.Selected == 0 || len(r.Nulls) > 0 {
			t.Errorf("%s: selected %d, error %v, nulls %q", r.Filter, r.Selected, r.Err, r.Nulls)
		}
	}
	// 06 and 07 pipe .process_kprobe fields into test(), which jq refuses
	// on a process_exec line: they read the process_kprobe events (as
	// with tetra getevents --event-types PROCESS_KPROBE).
	for _, f := range []string{"06.jq", "07.jq"} {
		if _, err := jqcheck.Run(filepath.Join("testdata", "jq", f), stream); err == nil || !strings.Contains(err.Error(), "cannot be matched") {
			t.Errorf("%s on the whole stream: %v", f, err)
		}
	}
}

// The recorded stream's lineage holds together: each process's events
// carry the exec_id of its process_exec (or of its fork), each parent
// is a process of the stream or the runtime outside the workload, and
// every process that started ended.
func TestRecordedStreamLineage(t *testing.T) {
	stream := recordedStream(t)
	started := map[string]string{} // exec_id -> binary
	var evs []*events.Event
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		ev := &events.Event{}
		if err := json.Unmarshal(sc.Bytes(), ev); err != nil {
			t.Fatal(err)
		}
		// The encoder wrote these lines: it writes them again alike.
		if b, err := ev.AppendJSON(nil); err != nil || !bytes.Equal(b, sc.Bytes()) {
			t.Fatalf("re-encoded line differs:\n%s\n%s", b, sc.Bytes())
		}
		evs = append(evs, ev)
		if ev.ProcessExec != nil {
			started[ev.ProcessExec.Process.ExecID] = ev.ProcessExec.Process.Binary
		}
	}
	types := map[string]int{}
	exited := map[string]bool{}
	for _, ev := range evs {
		types[ev.Type()]++
		p := ev.Process()
		parent := ev.Parent()
		if p.ExecID == "" || parent == nil || p.ParentExecID != parent.ExecID {
			t.Errorf("%s of %s: exec_id %q, parent %+v, parent_exec_id %q", ev.Type(), p.Binary, p.ExecID, parent, p.ParentExecID)
			continue
		}
		if b, ok := started[p.ExecID]; ok && b != p.Binary || !ok && p.Flags != "clone" {
			t.Errorf("%s of %s (%s): exec_id %q not of its process_exec", ev.Type(), p.Binary, p.Flags, p.ExecID)
		}
		if _, ok := started[parent.ExecID]; !ok && !ev.Ocigate.ParentOutside {
			t.Errorf("%s of %s: parent %s (%s) is neither in the stream nor outside", ev.Type(), p.Binary, parent.Binary, parent.ExecID)
		}
		if ev.ProcessExit != nil {
			exited[p.ExecID] = true
		}
	}
	for id, b := range started {
		if !exited[id] {
			t.Errorf("%s (%s) started and did not exit", b, id)
		}
	}
	if types[events.TypeExec] < 4 || types[events.TypeExit] < 4 || types[events.TypeKprobe] < 5 {
		t.Errorf("event types %v", types)
	}
}
