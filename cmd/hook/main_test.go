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
	"github.com/ocigate/ocigate/internal/hookreport"
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
		{"--exempt-namespaces", "kube-system", "createRuntime"},
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

// With no agent answering, the flag opens; the annotation opens only
// with --allow-fail-open-annotation, and a refused one is said and left
// for the agent in --report-dir.
func TestFailOpen(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agentd.sock")
	open := map[string]string{oci.AnnotationFailurePolicy: "open"}
	allow := "--allow-fail-open-annotation"
	tests := []struct {
		name     string
		args     []string
		specAnn  map[string]string
		stateAnn map[string]string
		want     int
		stderr   []string
		reported bool
	}{
		{"flag", []string{"--fail-open"}, nil, nil, 0, []string{"fail-open", "UNPROTECTED", "container c1"}, false},
		{"annotation refused", nil, open, nil, 1, []string{"fail-closed", "annotation ocigate.io/failure-policy=open refused: " +
			"fail-open is the operator's choice, and this hook's --allow-fail-open-annotation is off"}, true},
		{"spec annotation allowed", []string{allow}, open, nil, 0, []string{"fail-open", "UNPROTECTED", "allowed by --allow-fail-open-annotation"}, false},
		{"state annotation allowed", []string{allow}, nil, open, 0, []string{"UNPROTECTED"}, false},
		{"state closes what the spec opens", []string{allow}, open, map[string]string{oci.AnnotationFailurePolicy: "closed"}, 1, []string{"fail-closed"}, false},
		{"invalid annotation is closed", []string{allow}, map[string]string{oci.AnnotationFailurePolicy: "sometimes"}, nil, 1,
			[]string{"treating as closed", "fail-closed"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reports := filepath.Join(t.TempDir(), "reports")
			state := bundle(t, "c1", os.Getpid(), tt.specAnn, tt.stateAnn)
			args := append(append([]string{"--socket", socket, "--report-dir", reports}, tt.args...), "createRuntime")
			code, stderr := runHook(args, state)
			if code != tt.want {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.want, stderr)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr %q does not contain %q", stderr, s)
				}
			}
			got, errs := hookreport.Collect(reports)
			if len(errs) > 0 || tt.reported != (len(got) == 1) {
				t.Fatalf("reports %+v, %v", got, errs)
			}
			if tt.reported && (got[0].ContainerID != "c1" || got[0].Claims[0] != (hookreport.Claim{Key: oci.AnnotationFailurePolicy, Value: "open"}) ||
				!strings.Contains(got[0].Rule, "--allow-fail-open-annotation is off")) {
				t.Errorf("report %+v", got[0])
			}
			if tt.reported {
				oneLine(t, stderr)
			}
		})
	}
}

// policyAgent refuses every registration with a failure policy, as the
// agent does once it has chosen a profile.
type policyAgent struct{ policy string }

func (p policyAgent) Handle(context.Context, *api.Request) (*api.Response, error) {
	return nil, &api.PolicyError{Err: errors.New("point unavailable"), FailurePolicy: p.policy}
}

// When the agent answers, its failure policy decides: the container's
// annotation is the agent's to judge, even with
// --allow-fail-open-annotation; the flag still opens.
func TestAgentAnswerDecidesFailurePolicy(t *testing.T) {
	open := map[string]string{oci.AnnotationFailurePolicy: "open"}
	for _, tc := range []struct {
		policy string
		args   []string
		want   int
	}{
		{api.FailClosed, []string{"--allow-fail-open-annotation"}, 1},
		{api.FailOpen, nil, 0},
		{api.FailClosed, []string{"--fail-open"}, 0},
	} {
		socket := startAgent(t, policyAgent{tc.policy})
		args := append(append([]string{"--socket", socket, "--report-dir", ""}, tc.args...), "createRuntime")
		code, stderr := runHook(args, bundle(t, "c2", os.Getpid(), open, nil))
		if code != tc.want || !strings.Contains(stderr, "point unavailable") {
			t.Errorf("%s %v: exit %d, stderr %q", tc.policy, tc.args, code, stderr)
		}
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
	if r.ContainerID != "ctr-1" || r.Pid != os.Getpid() || r.Runtime != "podman" || r.RuntimeAnnotation != "io.container.manager" ||
		r.Identity != api.IdentityOf(want) {
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
		flag      string
		ann       map[string]string
		want, key string
	}{
		{"crun", map[string]string{"io.container.manager": "libpod"}, "crun", ""},
		{"", map[string]string{"io.container.manager": "libpod"}, "podman", "io.container.manager"},
		{"", map[string]string{"io.kubernetes.cri-o.Name": "x", "io.kubernetes.cri-o.Image": "y"}, "cri-o", "io.kubernetes.cri-o.Image"},
		{"", map[string]string{"io.kubernetes.cri.container-type": "container"}, "containerd", "io.kubernetes.cri.container-type"},
		{"", nil, strings.TrimSpace(string(comm)), ""},
	}
	for _, tt := range tests {
		if got, key := runtimeName(tt.flag, &oci.Container{Annotations: tt.ann}); got != tt.want || key != tt.key {
			t.Errorf("runtimeName(%q, %v) = %q, %q, want %q, %q", tt.flag, tt.ann, got, key, tt.want, tt.key)
		}
	}
}
