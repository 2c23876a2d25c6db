package jqcheck

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/testenv"
)

// The seeds' filters, as the agent's tests keep them.
var filters = filepath.Join("..", "agent", "testdata", "jq")

func needJQ(t *testing.T) {
	t.Helper()
	testenv.NeedTools(t, "jq")
}

const (
	full = `{"process_kprobe":{"process":{"exec_id":"e1","pid":{"value":7},"binary":"/usr/bin/nc","docker":"c","pod":{"container":{"id":"c"}}},` +
		`"parent":{"exec_id":"e0","binary":"/usr/sbin/runc"},"function_name":"tcp_connect",` +
		`"args":[{"sock_arg":{"family":"AF_INET","protocol":"IPPROTO_TCP","daddr":"1.2.3.4","dport":4444}}],"action":"KPROBE_ACTION_SIGKILL"},` +
		`"node_name":"n","time":"2026-01-01T00:00:00Z"}`
	// the same connect without its parent
	orphan = `{"process_kprobe":{"process":{"exec_id":"e2","pid":{"value":8},"binary":"/usr/bin/nc","docker":"c","pod":{"container":{"id":"c"}}},` +
		`"function_name":"tcp_connect","args":[{"sock_arg":{"daddr":"1.2.3.5","dport":4444,"protocol":"IPPROTO_TCP"}}],"action":"KPROBE_ACTION_POST"},` +
		`"node_name":"n","time":"2026-01-01T00:00:00Z"}`
	execEv = `{"process_exec":{"process":{"exec_id":"e1","pid":{"value":7},"binary":"/usr/bin/nc"}},"node_name":"n","time":"2026-01-01T00:00:00Z"}`
)

func TestCheckFindsNulls(t *testing.T) {
	needJQ(t)
	stream := []byte(execEv + "\n" + full + "\n" + orphan + "\n")
	r := Check(filepath.Join(filters, "08.jq"), stream)
	if r.Err != nil || r.Selected != 2 || len(r.Nulls) != 1 || r.Nulls[0] != "output 2: .parent is null" {
		t.Fatalf("08.jq: %+v", r)
	}
	r = Check(filepath.Join(filters, "05.jq"), stream)
	if r.Err != nil || r.Selected != 1 || len(r.Nulls) != 0 {
		t.Fatalf("05.jq: %+v", r)
	}
	// 01 selects both connects; the orphan lacks its parent's fields.
	r = Check(filepath.Join(filters, "01.jq"), stream)
	if r.Err != nil || r.Selected != 2 || strings.Join(r.Nulls, ";") !=
		"output 2: .process_kprobe.parent.exec_id is null;output 2: .process_kprobe.parent.binary is null" {
		t.Fatalf("01.jq: %+v", r)
	}
}

// 06 and 07 fail on any event that is not a process_kprobe: jq's test()
// refuses null. Check runs them on the process_kprobe events.
func TestKprobeOnlyFilters(t *testing.T) {
	needJQ(t)
	stream := []byte(execEv + "\n" + full + "\n")
	for _, f := range []string{"06.jq", "07.jq"} {
		if _, err := Run(filepath.Join(filters, f), stream); err == nil || !strings.Contains(err.Error(), "cannot be matched") {
			t.Errorf("%s on a process_exec event: %v, want jq's refusal", f, err)
		}
	}
	if r := Check(filepath.Join(filters, "06.jq"), stream); r.Err != nil || r.Selected != 1 || len(r.Nulls) != 0 {
		t.Errorf("06.jq: %+v", r)
	}
	if r := Check(filepath.Join(filters, "07.jq"), stream); r.Err != nil || r.Selected != 0 {
		t.Errorf("07.jq: %+v", r)
	}
	k, err := KprobeEvents([]byte(execEv + "\n\n" + orphan))
	if err != nil || strings.TrimSpace(string(k)) != orphan {
		t.Fatalf("KprobeEvents: %q, %v", k, err)
	}
	if _, err := KprobeEvents([]byte("{not json")); err == nil {
		t.Fatal("a broken line passed")
	}
}

func TestCheckDirNamesEveryFilter(t *testing.T) {
	needJQ(t)
	res, err := CheckDir(filters, []byte(full+"\n"))
	if err != nil || len(res) != 9 {
		t.Fatalf("%d results, %v", len(res), err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Filter, r.Err)
		}
	}
	if r := Check("nope.jq", nil); r.Err == nil {
		t.Error("a filter that is not a seed's passed")
	}
}
