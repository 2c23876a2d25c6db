package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// --- the agent ---

func (s *suite) startAgent() error {
	logf, err := os.Create(s.agentLog)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"run", "--socket", s.cfg.socket, "--events-file", s.cfg.events}
	if s.cfg.enforcer != "" {
		args = append(args, "--enforcer", s.cfg.enforcer)
	}
	if s.cfg.profiles != "none" {
		args = append(args, "--profiles", s.cfg.profiles)
	}
	if s.cfg.cgroupRoot != "" {
		args = append(args, "--cgroup-root", s.cfg.cgroupRoot)
	}
	s.logf("starting %s %s", s.cfg.agent, strings.Join(args, " "))
	s.agentCmd = exec.Command(s.cfg.agent, args...)
	s.agentCmd.Stdout = logf
	s.agentCmd.Stderr = logf
	s.agentCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := s.agentCmd.Start(); err != nil {
		return fmt.Errorf("starting the agent: %w", err)
	}
	s.agentDone = make(chan error, 1)
	go func() { s.agentDone <- s.agentCmd.Wait() }()
	deadline := time.Now().Add(s.cfg.agentStartWait)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-s.agentDone:
			s.agentDone <- err
			return fmt.Errorf("the agent exited during startup (%v): %s", err, lastLines(s.agentLog, 3))
		default:
		}
		st, err := s.status()
		if err == nil {
			s.backends = st.Backends
			s.emit("VMTEST-INFO agent-ready %s", time.Since(start).Round(10*time.Millisecond))
			return nil
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the agent did not answer status within %s: %v", s.cfg.agentStartWait, last)
}

// stopAgent sends SIGTERM and returns the exit error (nil for exit 0).
func (s *suite) stopAgent() error {
	if s.agentCmd == nil || s.agentCmd.Process == nil {
		return nil
	}
	_ = s.agentCmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.agentDone:
		s.agentCmd = nil
		return err
	case <-time.After(30 * time.Second):
		_ = s.agentCmd.Process.Kill()
		<-s.agentDone
		s.agentCmd = nil
		return errors.New("the agent did not stop within 30s of SIGTERM")
	}
}

type backendEntry struct {
	Point     string   `json:"point"`
	Backend   string   `json:"backend"`
	Mechanism string   `json:"mechanism"`
	Skipped   []string `json:"skipped"`
}

type agentStatus struct {
	Backends  []backendEntry `json:"backends"`
	Workloads []struct {
		ContainerID string `json:"container_id"`
		CgroupID    uint64 `json:"cgroup_id"`
		CgroupPath  string `json:"cgroup_path"`
	} `json:"workloads"`
	Counters map[string]uint64 `json:"counters"`
}

func (st *agentStatus) workloadIDs() []string {
	ids := []string{}
	for _, w := range st.Workloads {
		ids = append(ids, w.ContainerID)
	}
	return ids
}

// status runs the real CLI: ocigate-agentd status -o json.
func (s *suite) status() (*agentStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.cfg.agent, "status", "--socket", s.cfg.socket, "-o", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ocigate-agentd status: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var st agentStatus
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		return nil, fmt.Errorf("decoding status %q: %w", stdout.String(), err)
	}
	return &st, nil
}
