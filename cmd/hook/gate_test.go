package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/api"
)

func ops(reqs []*api.Request) string {
	var s []string
	for _, r := range reqs {
		s = append(s, r.Op)
	}
	return strings.Join(s, ",")
}

// podState is the state of a container of pod ns/name as containerd's
// CRI plugin makes it.
func podState(t *testing.T, ns, typ string) string {
	return bundle(t, "ctr-"+ns, os.Getpid(), map[string]string{
		annSandboxNamespace: ns, annSandboxName: "p", annContainerType: typ}, nil)
}

// With the agent's NRI plugin connected (its marker beside the socket)
// the gate admits the container without a call, leaving registration to
// the plugin; with only the agent listening it registers the container
// itself.
func TestGateAgentUp(t *testing.T) {
	for _, tt := range []struct {
		name   string
		marker bool
		want   string
	}{
		{"plugin connected", true, ""},
		{"plugin not connected, or no plugin", false, "register"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			agent := &fakeAgent{}
			socket := startAgent(t, agent)
			if tt.marker {
				if err := os.WriteFile(api.NRIMarker(socket), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			code, stderr := runHook([]string{"--socket", socket, "--nri-gate", "createRuntime"}, podState(t, "shop", "container"))
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if got := ops(agent.requests()); got != tt.want {
				t.Fatalf("agent saw %q, want %q", got, tt.want)
			}
		})
	}
}

// A marker that an agent left when it died admits nothing: no agent
// listens.
func TestGateStaleMarker(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agentd.sock")
	if err := os.WriteFile(api.NRIMarker(socket), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := runHook([]string{"--socket", socket, "--timeout", "400ms", "--nri-gate", "createRuntime"}, podState(t, "shop", "container"))
	if code != 1 || !strings.Contains(stderr, "is not exempt") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// With no agent answering, the pods of the namespaces of the flag and of
// the file start, a pod's sandbox starts, and any other is refused
// naming its namespace and the exempt ones.
func TestGateAgentDown(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "agentd.sock")
	file := filepath.Join(dir, "exempt")
	if err := os.WriteFile(file, []byte("# the chart's\nocigate\n\n  monitoring \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--socket", socket, "--timeout", "400ms", "--nri-gate", "--exempt-namespaces", "kube-system, other",
		"--exempt-file", file, "createRuntime"}
	for _, ns := range []string{"kube-system", "other", "ocigate", "monitoring"} {
		if code, stderr := runHook(args, podState(t, ns, "container")); code != 0 {
			t.Errorf("namespace %s: exit %d, stderr %q", ns, code, stderr)
		}
	}
	if code, stderr := runHook(args, podState(t, "shop", "sandbox")); code != 0 {
		t.Errorf("sandbox: exit %d, stderr %q", code, stderr)
	}
	// CRI-O's annotations
	crio := func(ns, typ string) string {
		return bundle(t, "crio-"+ns, os.Getpid(), map[string]string{annCRIONamespace: ns, annCRIOType: typ}, nil)
	}
	if code, stderr := runHook(args, crio("kube-system", "container")); code != 0 {
		t.Errorf("CRI-O, exempt: exit %d, stderr %q", code, stderr)
	}
	if code, stderr := runHook(args, crio("shop", "sandbox")); code != 0 {
		t.Errorf("CRI-O sandbox: exit %d, stderr %q", code, stderr)
	}
	if code, stderr := runHook(args, crio("shop", "container")); code != 1 || !strings.Contains(stderr, `namespace "shop" is not exempt`) {
		t.Errorf("CRI-O, not exempt: exit %d, stderr %q", code, stderr)
	}
	code, stderr := runHook(args, podState(t, "shop", "container"))
	if code != 1 || !strings.Contains(stderr, `container ctr-shop refused (fail-closed)`) ||
		!strings.Contains(stderr, `pod shop/p: namespace "shop" is not exempt (exempt: kube-system, other, ocigate, monitoring)`) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	oneLine(t, stderr)
	// A container of no CRI pod is not exempt either; a missing file
	// exempts nothing more.
	args[8] = filepath.Join(dir, "none")
	code, stderr = runHook(args, bundle(t, "plain", os.Getpid(), nil, nil))
	if code != 1 || !strings.Contains(stderr, "has no "+annSandboxNamespace+" or "+annCRIONamespace) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if code, _ := runHook(args, podState(t, "ocigate", "container")); code != 1 {
		t.Fatalf("without the file namespace ocigate is still exempt")
	}
}

// An agent that listens decides, exempt namespace or not: its refusal
// refuses the container.
func TestGateAgentRefuses(t *testing.T) {
	agent := &fakeAgent{fail: os.ErrPermission}
	socket := startAgent(t, agent)
	args := []string{"--socket", socket, "--nri-gate", "--exempt-namespaces", "kube-system", "createRuntime"}
	for _, ns := range []string{"kube-system", "shop"} {
		if code, stderr := runHook(args, podState(t, ns, "container")); code != 1 || !strings.Contains(stderr, "permission denied") {
			t.Errorf("%s: exit %d, stderr %q", ns, code, stderr)
		}
	}
}
