package job

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/apiserver"
	"github.com/ocigate/ocigate/internal/events"
)

// asStub is the variable that, set, makes the test binary the job's stub.
const asStub = "OCIGATE_JOB_TEST_STUB"

func TestMain(m *testing.M) {
	if os.Getenv(asStub) == "1" {
		os.Exit(Child(os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

// fakeAgent answers registrations like the agent, checking that the pid
// really is in the cgroup it claims, and records the requests.
type fakeAgent struct {
	mu       sync.Mutex
	reqs     []*api.Request
	refuse   string
	events   string // append an event for each registration to this file
	resolver cgroupfilter.Resolver
}

func (f *fakeAgent) Handle(_ context.Context, req *api.Request) (*api.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if req.Op != api.OpRegister {
		return &api.Response{}, nil
	}
	if f.refuse != "" {
		return nil, errors.New(f.refuse)
	}
	r := req.Register
	if p, err := f.resolver.CgroupPath(r.Pid); err != nil || p != r.Identity.CgroupPath {
		return nil, fmt.Errorf("pid %d is in %q (%v), registration says %q", r.Pid, p, err, r.Identity.CgroupPath)
	}
	if f.events != "" {
		ev := events.Event{
			ProcessKprobe: &events.Kprobe{FunctionName: "tcp_connect", Process: events.Process{Binary: "/usr/bin/nc"},
				Args: []events.Arg{{SockArg: &events.SockArg{Daddr: "203.0.113.9", Dport: 4444}}}, PolicyName: "p"},
			Ocigate: &events.Ocigate{ContainerID: r.ContainerID, Verdict: "denied", Point: "connect"},
		}
		other := ev
		other.Ocigate = &events.Ocigate{ContainerID: "someone-else", Verdict: "killed", Point: "exec"}
		// The job's own process events are no verdicts.
		exec := events.Event{ProcessExec: &events.Exec{Process: events.Process{Binary: "/usr/bin/true"}},
			Ocigate: &events.Ocigate{ContainerID: r.ContainerID, Mode: "enforce", Enforced: true}}
		for _, e := range []events.Event{ev, other, exec} {
			b, _ := json.Marshal(e)
			appendLine(f.events, b)
		}
	}
	return &api.Response{Workload: &api.Workload{ContainerID: r.ContainerID, Profile: "ci-runner",
		ProfileReason: "requested by the registering client: run-job --profile", Mode: "enforce"}}, nil
}

func (f *fakeAgent) requests() []*api.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*api.Request(nil), f.reqs...)
}

func appendLine(path string, b []byte) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	_, _ = f.Write(append(b, '\n'))
}

// setup needs root and cgroup v2; it serves a fake agent and returns a
// config whose stub is this test binary.
func setup(t *testing.T) (*fakeAgent, Config) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("run-job needs root (cgroup creation)")
	}
	root, err := cgroupfilter.V2Mount()
	if err != nil {
		t.Skipf("no cgroup v2: %v", err)
	}
	t.Setenv(asStub, "1")
	agent := &fakeAgent{resolver: cgroupfilter.Resolver{CgroupRoot: root}}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	srv, err := apiserver.Listen(sock, agent, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(done) }()
	parent := fmt.Sprintf("/ocigate-jobtest-%d", os.Getpid())
	t.Cleanup(func() {
		cancel()
		<-done
		_ = os.Remove(filepath.Join(root, parent))
	})
	var log bytes.Buffer
	return agent, Config{Socket: sock, Profile: "ci-runner", CgroupRoot: root, Parent: parent,
		ChildPath: os.Args[0], ChildArgs: []string{"stub"}, Log: &log, Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{},
		settle: 50 * time.Millisecond}
}

func logOf(cfg Config) string { return cfg.Log.(*bytes.Buffer).String() }

func cgroupGone(t *testing.T, cfg Config, res Result) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(cfg.CgroupRoot, res.Cgroup)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup %s left behind (%v)", res.Cgroup, err)
	}
}

func TestRunInItsCgroup(t *testing.T) {
	agent, cfg := setup(t)
	out := filepath.Join(t.TempDir(), "cgroup")
	cfg.ID = "job-test-1"
	cfg.Args = []string{"sh", "-c", "grep ^0:: /proc/self/cgroup > " + out + "; echo hello; exit 7"}
	res, err := Run(context.Background(), cfg)
	if err != nil || res.ExitCode != 7 {
		t.Fatalf("exit %d, %v; log:\n%s", res.ExitCode, err, logOf(cfg))
	}
	want := "0::" + cfg.Parent + "/job-test-1\n"
	if b, _ := os.ReadFile(out); string(b) != want {
		t.Errorf("the command ran in %q, want %q", b, want)
	}
	if got := cfg.Stdout.(*bytes.Buffer).String(); got != "hello\n" {
		t.Errorf("stdout %q", got)
	}
	reqs := agent.requests()
	if len(reqs) != 2 || reqs[0].Op != api.OpRegister || reqs[1].Op != api.OpUnregister {
		t.Fatalf("requests %+v", reqs)
	}
	r := reqs[0].Register
	if r.ContainerID != "job-test-1" || r.Runtime != RuntimeName || r.Pid <= 0 || r.Profile != "ci-runner" || len(r.Annotations) != 0 ||
		r.Identity.CgroupPath != cfg.Parent+"/job-test-1" || r.Identity.CgroupID == 0 || r.Identity.Namespaces.Mnt == 0 {
		t.Errorf("registration %+v", r)
	}
	if reqs[1].Unregister.ContainerID != "job-test-1" {
		t.Errorf("unregistration %+v", reqs[1].Unregister)
	}
	cgroupGone(t, cfg, res)
	if l := logOf(cfg); !strings.Contains(l, "job job-test-1: profile ci-runner (requested by the registering client: run-job --profile), mode enforce; the command exited 7") ||
		!strings.Contains(l, "no --events-file given") {
		t.Errorf("summary:\n%s", l)
	}
}

func TestRunFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name, refuse, socket, want string
	}{
		{"agent down", "", "/nonexistent/agent.sock", "not reachable"},
		{"agent refuses", "requested profile \"nope\": no such profile", "", "no such profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agent, cfg := setup(t)
			agent.refuse = tc.refuse
			if tc.socket != "" {
				cfg.Socket = tc.socket
			}
			marker := filepath.Join(t.TempDir(), "ran")
			cfg.Args = []string{"touch", marker}
			res, err := Run(context.Background(), cfg)
			if !errors.Is(err, ErrNotRun) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fail-closed") {
				t.Errorf("error %v, want ErrNotRun with %q", err, tc.want)
			}
			if res.ExitCode != ExitFailed {
				t.Errorf("exit %d, want %d", res.ExitCode, ExitFailed)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("the command ran")
			}
			for _, r := range agent.requests() {
				if r.Op == api.OpUnregister {
					t.Errorf("unregistered a workload that was never registered")
				}
			}
			cgroupGone(t, cfg, res)
		})
	}
}

func TestRunNotFound(t *testing.T) {
	agent, cfg := setup(t)
	cfg.Args = []string{"ocigate-no-such-command"}
	res, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrNotRun) || res.ExitCode != ExitNotFound || len(agent.requests()) != 0 {
		t.Errorf("exit %d, err %v, requests %d", res.ExitCode, err, len(agent.requests()))
	}
}

func TestRunKillsLeftovers(t *testing.T) {
	_, cfg := setup(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	cfg.Args = []string{"sh", "-c", "sleep 100 & echo $! > " + pidFile + "; exit 3"}
	start := time.Now()
	res, err := Run(context.Background(), cfg)
	if err != nil || res.ExitCode != 3 {
		t.Fatalf("exit %d, %v", res.ExitCode, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v", took)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		t.Fatalf("pid file %q", b)
	}
	if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && string(cmd) == "sleep\x00100\x00" {
		t.Errorf("the background sleep %d still runs", pid)
	}
	if !strings.Contains(logOf(cfg), "killed 1 process(es) the job left behind") {
		t.Errorf("log:\n%s", logOf(cfg))
	}
	cgroupGone(t, cfg, res)
}

func TestRunForwardsSignals(t *testing.T) {
	_, cfg := setup(t)
	sigs := make(chan os.Signal, 1)
	cfg.Signals = sigs
	ready := filepath.Join(t.TempDir(), "ready")
	cfg.Args = []string{"sh", "-c", "touch " + ready + "; exec sleep 30"}
	go func() {
		for i := 0; i < 500; i++ {
			if _, err := os.Stat(ready); err == nil {
				time.Sleep(100 * time.Millisecond) // sh exec's sleep
				sigs <- syscall.SIGTERM
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	start := time.Now()
	res, err := Run(context.Background(), cfg)
	if err != nil || res.ExitCode != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit %d, %v", res.ExitCode, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("SIGTERM did not end the job: took %v", took)
	}
	if !strings.Contains(logOf(cfg), "exited 143 (signal 15)") {
		t.Errorf("log:\n%s", logOf(cfg))
	}
}

func TestRunSummarisesEvents(t *testing.T) {
	agent, cfg := setup(t)
	cfg.EventsFile = filepath.Join(t.TempDir(), "events.jsonl")
	cfg.ID = "job-test-events"
	// An event of an earlier job with the same ID is not this job's.
	old, _ := json.Marshal(events.Event{Ocigate: &events.Ocigate{ContainerID: cfg.ID, Verdict: "killed", Point: "exec"}})
	appendLine(cfg.EventsFile, old)
	agent.events = cfg.EventsFile
	cfg.Args = []string{"true"}
	if res, err := Run(context.Background(), cfg); err != nil || res.ExitCode != 0 {
		t.Fatalf("exit %d, %v", res.ExitCode, err)
	}
	l := logOf(cfg)
	for _, want := range []string{
		"1 event(s) for this job in " + cfg.EventsFile + ": 1 denied",
		"ocigate:   denied connect 203.0.113.9:4444 by /usr/bin/nc (policy p)",
	} {
		if !strings.Contains(l, want) {
			t.Errorf("summary lacks %q:\n%s", want, l)
		}
	}
	if strings.Contains(l, "killed") {
		t.Errorf("summary counts another job's or an earlier event:\n%s", l)
	}
}

func TestDescribe(t *testing.T) {
	ev := events.Event{
		ProcessKprobe: &events.Kprobe{FunctionName: "dup2", Process: events.Process{Binary: "/usr/bin/bash"},
			Args: []events.Arg{{IntArg: &events.IntArg{Value: 3}}, {IntArg: &events.IntArg{Value: 1}}}},
		Ocigate: &events.Ocigate{Verdict: "reported", Point: "dup"},
	}
	if got := describeEvent(ev); got != "reported dup dup2(3, 1) by /usr/bin/bash" {
		t.Errorf("dup: %q", got)
	}
	ev = events.Event{ProcessKprobe: &events.Kprobe{Process: events.Process{Binary: "/usr/bin/bash"},
		Args: []events.Arg{{FileArg: &events.FileArg{Path: "/bin/sh"}}, {IntArg: &events.IntArg{Value: 0}}}, PolicyName: "reverse-shell"},
		Ocigate: &events.Ocigate{Verdict: "killed", Point: "exec"}}
	if got := describeEvent(ev); got != "killed exec /bin/sh by /usr/bin/bash (policy reverse-shell)" {
		t.Errorf("exec: %q", got)
	}
	for code, want := range map[int]string{0: "0", 7: "7", 137: "137 (signal 9)", 255: "255"} {
		if got := describeExit(code); got != want {
			t.Errorf("describeExit(%d) = %q", code, got)
		}
	}
}
