package agentlog

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEventLogTailsPartialLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	log := NewEventLog(path)
	if len(log.Events()) != 0 {
		t.Fatal("events before the file exists")
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ev := `{"process_kprobe":{"function_name":"tcp_connect","args":[{"sock_arg":{"daddr":"127.0.0.2","dport":4444}}]},"ocigate":{"container_id":"c1","enforced":true}}`
	// Half a line is not an event yet.
	if _, err := f.WriteString("not json\n" + ev[:40]); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"process_kprobe.function_name":         "tcp_connect",
		"process_kprobe.args.0.sock_arg.daddr": "127.0.0.2",
		"process_kprobe.args.0.sock_arg.dport": 4444,
		"ocigate.container_id":                 "c1",
		"ocigate.enforced":                     true,
	}
	if _, ok := log.Find(Matcher(want)); ok {
		t.Fatal("matched half a line")
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		f.WriteString(ev[40:] + "\n")
	}()
	got, err := log.Wait(context.Background(), 5*time.Second, Matcher(want))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := Field(got, "ocigate.container_id"); v != "c1" {
		t.Errorf("container_id = %v", v)
	}
	if lines := log.Lines(); len(lines) != 2 || lines[0] != "not json" {
		t.Errorf("lines = %q", lines)
	}
	for path, val := range map[string]any{
		"ocigate.container_id":                 "c2",
		"process_kprobe.args.0.sock_arg.dport": 4445,
		"process_kprobe.args.1.sock_arg.dport": 4444,
		"ocigate.enforced":                     "true",
		"ocigate.missing":                      nil,
	} {
		if Match(got, map[string]any{path: val}) {
			t.Errorf("%s == %v matched", path, val)
		}
	}
	if _, err := log.Wait(context.Background(), 200*time.Millisecond, Matcher(map[string]any{"x": 1})); err == nil {
		t.Error("Wait for a missing event succeeded")
	}
}

func TestMatch(t *testing.T) {
	ev := map[string]any{
		"ocigate": map[string]any{"enforced": true, "errno": float64(1), "backend": "lsm"},
		"process_kprobe": map[string]any{"args": []any{map[string]any{"sock_arg": map[string]any{"dport": float64(4444)}}},
			"function_name": "tcp_connect"},
	}
	ok := map[string]any{
		"ocigate.enforced": true, "ocigate.errno": 1, "process_kprobe.args.0.sock_arg.dport": 4444,
		"process_kprobe.function_name": []string{"security_socket_connect", "tcp_connect"},
	}
	if !Match(ev, ok) {
		t.Error("want a match")
	}
	for _, bad := range []map[string]any{
		{"ocigate.enforced": false}, {"ocigate.errno": 13}, {"ocigate.missing": "x"},
		{"process_kprobe.args.1.sock_arg.dport": 4444}, {"process_kprobe.function_name": []string{"x"}},
		{"ocigate.errno": []string{"1"}},
	} {
		if Match(ev, bad) {
			t.Errorf("%v matched", bad)
		}
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentd.log")
	if err := os.WriteFile(path, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Tail(path, 2); got != "two\nthree" {
		t.Errorf("Tail(2) = %q", got)
	}
	if got := Tail(path, 5); got != "one\ntwo\nthree" {
		t.Errorf("Tail(5) = %q", got)
	}
	if got := Tail(filepath.Join(t.TempDir(), "none"), 2); !strings.HasPrefix(got, "(") {
		t.Errorf("Tail of a missing file = %q", got)
	}
}
