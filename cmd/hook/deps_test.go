package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The hook starts on every container's start path, and each package it
// links costs that start its initialisation and the pages it touches:
// registration needs neither the net package (a unix socket's system
// calls do: internal/api's dialBlocking and dialPolled) nor containerd's
// cgroups package (cgroupfilter reads the host's layout itself).
func TestHookLinksNoNetOrContainerdCgroups(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/ocigate/ocigate/internal/api") {
		t.Fatalf("go list -deps lists no internal/api: %q", deps)
	}
	for _, p := range []string{"net", "github.com/containerd/cgroups/v3"} {
		if slices.Contains(deps, p) {
			t.Errorf("ocigate-hook links %s", p)
		}
	}
}
