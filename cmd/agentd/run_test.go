package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ocigate/ocigate/bpf/enforcer"
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
