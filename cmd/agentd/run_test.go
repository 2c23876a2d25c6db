package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/agentconfig"
)

// Only a kernel where no point can enforce stops the agent, and it says
// so; other load errors pass through unchanged.
func TestLoadError(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	nothing := fmt.Errorf("load BPF: %w: connect: no backend could attach: fallback: EPERM", enforcer.ErrNothingEnforces)
	err := loadError(zap.New(core), nothing)
	if !errors.Is(err, enforcer.ErrNothingEnforces) || !strings.HasPrefix(err.Error(), "the agent cannot enforce anything on this kernel: ") ||
		!strings.Contains(err.Error(), "connect: no backend could attach: fallback: EPERM") {
		t.Fatalf("nothing enforces: %v", err)
	}
	if logs.FilterMessageSnippet("the agent stops").Len() != 1 {
		t.Fatalf("logged %v", logs.All())
	}
	other := errors.New("load BPF: raise memlock limit: EPERM")
	if err := loadError(zap.New(core), other); err != other {
		t.Fatalf("other load error became %v", err)
	}
}

// A Config a test builds is validated as the flags' is: an invalid one
// starts nothing.
func TestStartAgentRefusesInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := agentconfig.Default()
	// Were it not refused, it would stop at the missing cgroup root,
	// before the kernel is touched.
	cfg.Socket, cfg.PinDir, cfg.CgroupRoot = filepath.Join(dir, "agentd.sock"), "", filepath.Join(dir, "no-cgroup")
	cfg.ReconcileInterval = -time.Second
	err := startAgent(cfg)
	if err == nil || err.Error() != "--reconcile-interval -1s: want 0 (off) or a positive duration" {
		t.Fatalf("error %v", err)
	}
	if _, err := os.Stat(cfg.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket: %v", err)
	}
}

// Memory profiling is on only where the profiler is served.
func TestProfileMemory(t *testing.T) {
	defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
	runtime.MemProfileRate = 0
	profileMemory("")
	if runtime.MemProfileRate != 0 {
		t.Fatalf("memory profiling on without --pprof-addr: rate %d", runtime.MemProfileRate)
	}
	profileMemory("127.0.0.1:6060")
	if runtime.MemProfileRate != memProfileRate {
		t.Fatalf("memory profiling rate %d with --pprof-addr, want %d", runtime.MemProfileRate, memProfileRate)
	}
}
