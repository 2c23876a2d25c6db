package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/apiserver"
	"github.com/ocigate/ocigate/runtime/oci"
)

// bundle writes a bundle whose config.json carries annotations and
// returns the OCI state the runtime would pass for it.
func bundle(t *testing.T, id string, pid int, specAnn, stateAnn map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"ociVersion": "1.2.0", "annotations": specAnn,
		"process": map[string]any{"args": []string{"/bin/sh"}, "cwd": "/"}, "root": map[string]any{"path": "rootfs"}})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	st, _ := json.Marshal(map[string]any{"ociVersion": "1.2.0", "id": id, "status": "creating", "pid": pid,
		"bundle": dir, "annotations": stateAnn})
	return string(st)
}

// fakeAgent records requests; fail makes every answer an error.
type fakeAgent struct {
	mu   sync.Mutex
	reqs []*api.Request
	fail error
}

func (f *fakeAgent) Handle(_ context.Context, req *api.Request) (*api.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if f.fail != nil {
		return nil, f.fail
	}
	return &api.Response{}, nil
}

func (f *fakeAgent) requests() []*api.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*api.Request(nil), f.reqs...)
}

func startAgent(t *testing.T, h apiserver.Handler) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agentd.sock")
	srv, err := apiserver.Listen(path, h, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

func runHook(args []string, stdin string) (int, string) {
	var stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), &stderr)
	return code, stderr.String()
}

func oneLine(t *testing.T, s string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("stderr is not one line: %q", s)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"start"},
		{},
		{"createRuntime", "extra"},
		{"--timeout", "0s", "createRuntime"},
		{"--no-such-flag", "createRuntime"},
	} {
		code, stderr := runHook(args, "")
		if code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, stderr)
		}
	}
	_, stderr := runHook([]string{"start"}, "")
	if !strings.Contains(stderr, `unknown stage "start"`) {
		t.Errorf("stderr %q does not name the stage", stderr)
	}
}

func TestBadStateFailsClosed(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no.sock")
	tests := []struct {
		name, state, want string
	}{
		{"garbage", "hello", "not a JSON object"},
		{"oversize", `{"id":"` + strings.Repeat("x", oci.MaxStateSize) + `"}`, "exceeds 1048576 bytes"},
		{"empty", "", "empty"},
		{"no pid", bundle(t, "c1", 0, nil, nil), "state has no pid"},
		{"relative bundle", `{"ociVersion":"1.2.0","id":"c1","pid":1,"bundle":"rel"}`, "not an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := runHook([]string{"--socket", missing, "createRuntime"}, tt.state)
			if code != 1 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "fail-closed") {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.want)
			}
			oneLine(t, stderr)
		})
	}
}

func TestAgentDownFailsClosed(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agentd.sock")
	state := bundle(t, "c1", os.Getpid(), nil, nil)
	code, stderr := runHook([]string{"--socket", socket, "createRuntime"}, state)
	if code != 1 || !strings.Contains(stderr, socket) || !strings.Contains(stderr, "container c1 refused (fail-closed)") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	oneLine(t, stderr)
}

func TestFailOpen(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agentd.sock")
	tests := []struct {
		name     string
		args     []string
		specAnn  map[string]string
		stateAnn map[string]string
		want     int
		stderr   []string
	}{
		{"flag", []string{"--fail-open"}, nil, nil, 0, []string{"fail-open", "UNPROTECTED", "container c1"}},
		{"spec annotation", nil, map[string]string{oci.AnnotationFailurePolicy: "open"}, nil, 0, []string{"fail-open", "UNPROTECTED"}},
		{"state annotation", nil, nil, map[string]string{oci.AnnotationFailurePolicy: "open"}, 0, []string{"UNPROTECTED"}},
		{"state closes what the spec opens", nil, map[string]string{oci.AnnotationFailurePolicy: "open"},
			map[string]string{oci.AnnotationFailurePolicy: "closed"}, 1, []string{"fail-closed"}},
		{"invalid annotation is closed", nil, map[string]string{oci.AnnotationFailurePolicy: "sometimes"}, nil, 1,
			[]string{"treating as closed", "fail-closed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := bundle(t, "c1", os.Getpid(), tt.specAnn, tt.stateAnn)
			args := append(append([]string{"--socket", socket}, tt.args...), "createRuntime")
			code, stderr := runHook(args, state)
			if code != tt.want {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.want, stderr)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr %q does not contain %q", stderr, s)
				}
			}
		})
	}
}

func TestPoststopNeverFails(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agentd.sock")
	for _, state := range []string{bundle(t, "c1", 0, nil, nil), "garbage", ""} {
		code, stderr := runHook([]string{"--socket", socket, "poststop"}, state)
		if code != 0 || !strings.Contains(stderr, "(ignored)") {
			t.Errorf("poststop with %q: exit %d, stderr %q", state, code, stderr)
		}
	}
}

func TestRegisterAndUnregister(t *testing.T) {
	agent := &fakeAgent{}
	socket := startAgent(t, agent)
	spec := map[string]string{"io.container.manager": "libpod", "from": "spec", "both": "spec"}
	state := bundle(t, "ctr-1", os.Getpid(), spec, map[string]string{"both": "state"})
	code, stderr := runHook([]string{"--socket", socket, "createRuntime"}, state)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	reqs := agent.requests()
	if len(reqs) != 1 || reqs[0].Op != api.OpRegister {
		t.Fatalf("agent saw %+v", reqs)
	}
	r := reqs[0].Register
	want, err := cgroupfilter.Resolver{}.Resolve(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if r.ContainerID != "ctr-1" || r.Pid != os.Getpid() || r.Runtime != "podman" || r.Identity != api.IdentityOf(want) {
		t.Fatalf("registration %+v, identity want %+v", r, want)
	}
	if !reflect.DeepEqual(r.Annotations, map[string]string{"io.container.manager": "libpod", "from": "spec", "both": "state"}) {
		t.Fatalf("annotations %v", r.Annotations)
	}
	var st struct{ Bundle string }
	_ = json.Unmarshal([]byte(state), &st)
	if r.Bundle != st.Bundle {
		t.Fatalf("bundle %q, want %q", r.Bundle, st.Bundle)
	}

	code, stderr = runHook([]string{"--socket", socket, "poststop"}, bundle(t, "ctr-1", 0, nil, nil))
	if code != 0 || stderr != "" {
		t.Fatalf("poststop: exit %d, stderr %q", code, stderr)
	}
	reqs = agent.requests()
	if len(reqs) != 2 || reqs[1].Op != api.OpUnregister || reqs[1].Unregister.ContainerID != "ctr-1" {
		t.Fatalf("agent saw %+v", reqs[1:])
	}
}

func TestAgentRefusalFailsClosed(t *testing.T) {
	socket := startAgent(t, &fakeAgent{fail: errors.New(`profile "x" is not loaded`)})
	code, stderr := runHook([]string{"--socket", socket, "prestart"}, bundle(t, "c9", os.Getpid(), nil, nil))
	if code != 1 || !strings.Contains(stderr, `profile "x" is not loaded`) || !strings.Contains(stderr, "container c9 refused") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	oneLine(t, stderr)
}

func TestTimeout(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "silent.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	code, stderr := runHook([]string{"--socket", socket, "--timeout", "300ms", "createRuntime"}, bundle(t, "c1", os.Getpid(), nil, nil))
	took := time.Since(start)
	if code != 1 || !strings.Contains(stderr, "did not answer") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if took > time.Second {
		t.Fatalf("hook took %v with --timeout 300ms", took)
	}
}

func TestRuntimeName(t *testing.T) {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", os.Getppid()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		flag string
		ann  map[string]string
		want string
	}{
		{"crun", map[string]string{"io.container.manager": "libpod"}, "crun"},
		{"", map[string]string{"io.container.manager": "libpod"}, "podman"},
		{"", map[string]string{"io.kubernetes.cri-o.Name": "x"}, "cri-o"},
		{"", map[string]string{"io.kubernetes.cri.container-type": "container"}, "containerd"},
		{"", nil, strings.TrimSpace(string(comm))},
	}
	for _, tt := range tests {
		if got := runtimeName(tt.flag, &oci.Container{Annotations: tt.ann}); got != tt.want {
			t.Errorf("runtimeName(%q, %v) = %q, want %q", tt.flag, tt.ann, got, tt.want)
		}
	}
}
