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
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// ownAgent is an agent of one test, beside the suite's: its own socket,
// events file, pin directory and workload records, so that the test can
// kill and restart it.
type ownAgent struct {
	t                        *testing.T
	dir, socket, events, log string
	pinDir, stateDir         string
	env                      []string // added to the agent's environment
	cmd                      *exec.Cmd
	done                     chan error
	starts                   int
	eventLog                 *agentlog.EventLog
}

// startOwnAgent starts an agent for t, with env (VAR=VALUE) added to its
// environment (stopped and uninstalled at the end of the test).
func startOwnAgent(t *testing.T, name string, env ...string) *ownAgent {
	t.Helper()
	dir := t.TempDir()
	a := &ownAgent{t: t, dir: dir, socket: filepath.Join(dir, "agentd.sock"), events: filepath.Join(dir, "events.jsonl"),
		log: filepath.Join(dir, "agentd.log"), stateDir: filepath.Join(dir, "state"), env: env,
		pinDir: filepath.Join("/sys/fs/bpf", fmt.Sprintf("ocigate-e2e-%s-%d", name, os.Getpid()))}
	a.eventLog = agentlog.NewEventLog(a.events)
	t.Cleanup(func() {
		if a.cmd != nil {
			if err := a.stop(syscall.SIGTERM); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if err := uninstallBPF(a.socket, a.pinDir, a.stateDir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if t.Failed() {
			t.Logf("agent log (tail):\n%s", agentlog.Tail(a.log, 40))
		}
	})
	a.start()
	return a
}

// start runs the agent (again) and waits until it answers.
func (a *ownAgent) start() {
	a.t.Helper()
	logf, err := os.OpenFile(a.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		a.t.Fatal(err)
	}
	defer logf.Close()
	a.starts++
	fmt.Fprintf(logf, "---- start %d\n", a.starts)
	cfg := agentconfig.Default()
	cfg.Socket, cfg.EventsFile, cfg.ProfileDir = a.socket, a.events, profileDir
	cfg.PinDir, cfg.StateDir = a.pinDir, a.stateDir
	// Others' containers on this machine are not this agent's.
	cfg.RuncRoots, cfg.ContainerdSocket = nil, ""
	trustTestSpecs(&cfg, a.dir)
	a.cmd = exec.Command(agentdBin, runArgs(cfg)...)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	a.cmd.Env = append(os.Environ(), a.env...)
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	a.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(a.cmd, a.done)
	if err := waitReady(a.socket, a.done, 30*time.Second); err != nil {
		select {
		case <-a.done: // exited: nothing to stop
			a.cmd = nil
		default:
		}
		a.t.Fatalf("%v\n%s", err, agentlog.Tail(a.log, 30))
	}
}

// stop sends sig and waits for the agent to exit.
func (a *ownAgent) stop(sig syscall.Signal) error {
	if a.cmd == nil {
		return nil
	}
	err := stopProcess(a.cmd, a.done, sig, 20*time.Second)
	a.cmd = nil
	if sig != syscall.SIGTERM && !errors.Is(err, errNotStopped) {
		return nil // only SIGTERM asks for a clean exit
	}
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// ownState is the part of `status -o json` the tests read.
type ownState struct {
	Backends []struct {
		Point   string `json:"point"`
		Backend string `json:"backend"`
	} `json:"backends"`
	Workloads []struct {
		ContainerID   string `json:"container_id"`
		CgroupID      uint64 `json:"cgroup_id"`
		Profile       string `json:"profile"`
		ProfileReason string `json:"profile_reason"`
	} `json:"workloads"`
	Counters map[string]uint64 `json:"counters"`
}

func (s *ownState) has(id string) bool {
	for _, w := range s.Workloads {
		if w.ContainerID == id {
			return true
		}
	}
	return false
}

func (a *ownAgent) status() (*ownState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, agentdBin, "status", "--socket", a.socket, "-o", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ocigate-agentd status: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var st ownState
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		return nil, fmt.Errorf("decode status: %w", err)
	}
	return &st, nil
}

func (a *ownAgent) mustStatus() *ownState {
	a.t.Helper()
	st, err := a.status()
	if err != nil {
		a.t.Fatal(err)
	}
	return st
}

// waitStatus polls status until ok accepts it, and returns the last one.
func (a *ownAgent) waitStatus(timeout time.Duration, ok func(*ownState) bool) (*ownState, bool) {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := a.mustStatus()
		if ok(st) {
			return st, true
		}
		if time.Now().After(deadline) {
			return st, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
