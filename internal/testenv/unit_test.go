package testenv

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Unit tests of the pure helpers; they need neither root nor OCIGATE_E2E.

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

func TestListenerRecords(t *testing.T) {
	ln, err := Listen("127.0.0.1:0", []byte("hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err != nil || string(buf) != "hello\n" {
		t.Fatalf("greeting %q, %v", buf, err)
	}
	c.Write([]byte("PWNED-42\n"))
	if !ln.WaitReceived("PWNED-42", 5*time.Second) {
		t.Fatalf("not received; conns %+v", ln.Conns())
	}
	if ln.WaitReceived("other", 100*time.Millisecond) {
		t.Error("received something never sent")
	}
	c.Close()
	ok := ln.WaitUntil(context.Background(), func(cs []ConnRecord) bool { return len(cs) == 1 && cs[0].Closed })
	if !ok {
		t.Errorf("close not recorded: %+v", ln.Conns())
	}
}

func TestHooksDJSON(t *testing.T) {
	var doc struct {
		Version string `json:"version"`
		Hook    struct {
			Path string   `json:"path"`
			Args []string `json:"args"`
		} `json:"hook"`
		When   map[string]bool `json:"when"`
		Stages []string        `json:"stages"`
	}
	if err := json.Unmarshal(HooksDJSON("/bin/h", []string{"h", "x"}), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "1.0.0" || doc.Hook.Path != "/bin/h" || len(doc.Hook.Args) != 2 ||
		!doc.When["always"] || len(doc.Stages) != 2 || doc.Stages[0] != "createRuntime" || doc.Stages[1] != "poststop" {
		t.Errorf("unexpected hooks.d document %+v", doc)
	}
}

func TestBundleSpec(t *testing.T) {
	if _, err := (Bundle{}).Spec(); err == nil {
		t.Error("bundle without args accepted")
	}
	if _, err := (Bundle{Args: []string{"x"}, Rootfs: "/"}).Spec(); err == nil {
		t.Error("rootfs / accepted")
	}
	s, err := Bundle{Args: []string{"x"}, HostNetwork: true, Poststop: []Hook{{Path: "/h", Timeout: 3}}}.Spec()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == "network" {
			t.Error("HostNetwork bundle has a network namespace")
		}
	}
	for _, m := range s.Mounts {
		if m.Type == "sysfs" {
			t.Error("HostNetwork bundle mounts sysfs")
		}
	}
	if s.Hooks == nil || len(s.Hooks.Poststop) != 1 || *s.Hooks.Poststop[0].Timeout != 3 || s.Hooks.CreateRuntime != nil {
		t.Errorf("hooks = %+v", s.Hooks)
	}
	if s.Version != "1.0.2" {
		t.Errorf("ociVersion %q", s.Version)
	}
}
