package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/agentconfig"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// extraAgent is an agent of one test, beside the harness's, with its own
// socket, events file, log and profiles directory (copyProfiles plus the
// test's files). Agents keep separate maps:
// each enforces only the containers registered with it.
type extraAgent struct {
	socket, events, log, profiles string
	ev                            *agentlog.EventLog
}

// startExtraAgent starts an extra agent for t with profiles (file name →
// content) added to its profiles directory; configure, when not nil,
// changes its Config. It is stopped at the end of the test.
func startExtraAgent(t *testing.T, profiles map[string]string, configure func(*agentconfig.Config)) *extraAgent {
	t.Helper()
	return startExtraAgentBin(t, agentdBin, profiles, configure)
}

// startExtraAgentBin is startExtraAgent with the agent binary bin
// (another version's).
func startExtraAgentBin(t *testing.T, bin string, profiles map[string]string, configure func(*agentconfig.Config)) *extraAgent {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, "agent-")
	if err != nil {
		t.Fatal(err)
	}
	a := &extraAgent{socket: filepath.Join(dir, "agentd.sock"), events: filepath.Join(dir, "events.jsonl"),
		log: filepath.Join(dir, "agentd.log"), profiles: filepath.Join(dir, "profiles")}
	if err := copyProfiles(a.profiles); err != nil {
		t.Fatal(err)
	}
	for name, content := range profiles {
		if err := os.WriteFile(filepath.Join(a.profiles, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logf, err := os.Create(a.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cfg := agentconfig.Default()
	cfg.Socket, cfg.EventsFile, cfg.ProfileDir = a.socket, a.events, a.profiles
	cfg.ReconcileInterval = reconcileInterval
	cfg.PinDir = "" // nothing pinned: the test's enforcement ends with the agent
	trustTestSpecs(&cfg, dir)
	if configure != nil {
		configure(&cfg)
	}
	cmd := exec.Command(bin, runArgs(cfg)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if err := stopProcess(cmd, done, syscall.SIGTERM, 15*time.Second); errors.Is(err, errNotStopped) {
			t.Errorf("extra agent: %v", err)
		}
		if t.Failed() {
			t.Logf("extra agent log:\n%s", agentlog.Tail(a.log, 40))
		}
	})
	a.ev = agentlog.NewEventLog(a.events)
	if err := waitReady(a.socket, done, 20*time.Second); err != nil {
		t.Fatalf("extra agent: %v\n%s", err, agentlog.Tail(a.log, 40))
	}
	return a
}

type agentState struct {
	Workloads []*api.Workload   `json:"workloads"`
	Counters  map[string]uint64 `json:"counters"`
}

func (a *extraAgent) status() (*agentState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, agentdBin, "status", "--socket", a.socket, "-o", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("status: %w: %s", err, stderr.String())
	}
	var st agentState
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// waitWorkload waits until the agent lists container id and returns it.
func (a *extraAgent) waitWorkload(t *testing.T, id string, within time.Duration) *api.Workload {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := a.status()
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range st.Workloads {
			if w.ContainerID == id {
				return w
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("workload %s not listed within %v:\n%s", id, within, agentlog.Tail(a.log, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitNoWorkload waits until the agent no longer lists id.
func (a *extraAgent) waitNoWorkload(t *testing.T, id string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		st, err := a.status()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, w := range st.Workloads {
			found = found || w.ContainerID == id
		}
		if !found {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("workload %s still listed after %v:\n%s", id, within, agentlog.Tail(a.log, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (a *extraAgent) waitEvent(t *testing.T, want map[string]any) map[string]any {
	t.Helper()
	ev, err := a.ev.Wait(context.Background(), eventTimeout, agentlog.Matcher(want))
	if err != nil {
		t.Errorf("event %v: %v\nevents:\n%s\nagent log:\n%s", want, err, strings.Join(a.ev.Lines(), "\n"), agentlog.Tail(a.log, 20))
	}
	return ev
}

// run runs a command bounded by a minute and returns its combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out), err
}
