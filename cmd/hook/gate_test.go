package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/api"
)

// nriAgent answers status with the NRI gauge (absent when counters is
// nil) and records requests as fakeAgent.
type nriAgent struct {
	fakeAgent
	counters map[string]uint64
}

func (n *nriAgent) Handle(ctx context.Context, req *api.Request) (*api.Response, error) {
	if _, err := n.fakeAgent.Handle(ctx, req); err != nil {
		return nil, err
	}
	if req.Op == api.OpStatus {
		return &api.Response{Status: &api.Status{Counters: n.counters}}, nil
	}
	return &api.Response{}, nil
}

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

// With the agent's NRI plugin connected the gate asks and admits, and
// leaves registration to the plugin; with only the agent answering it
// registers the container itself.
func TestGateAgentUp(t *testing.T) {
	for _, tt := range []struct {
		name     string
		counters map[string]uint64
		want     string
	}{
		{"plugin connected", map[string]uint64{api.CounterNRIConnected: 1}, "status"},
		{"plugin disconnected", map[string]uint64{api.CounterNRIConnected: 0}, "status,register"},
		{"agent without NRI", map[string]uint64{}, "status,register"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			agent := &nriAgent{counters: tt.counters}
			socket := startAgent(t, agent)
			code, stderr := runHook([]string{"--socket", socket, "--nri-gate", "createRuntime"}, podState(t, "shop", "container"))
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if got := ops(agent.requests()); got != tt.want {
				t.Fatalf("agent saw %s, want %s", got, tt.want)
			}
		})
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

// An agent that refuses to answer status is no agent for an exempt
// namespace's pod, and a refusal for any other.
func TestGateAgentFails(t *testing.T) {
	agent := &nriAgent{}
	agent.fail = os.ErrPermission
	socket := startAgent(t, agent)
	args := []string{"--socket", socket, "--nri-gate", "--exempt-namespaces", "kube-system", "createRuntime"}
	if code, stderr := runHook(args, podState(t, "kube-system", "container")); code != 0 {
		t.Errorf("exempt: exit %d, stderr %q", code, stderr)
	}
	if code, stderr := runHook(args, podState(t, "shop", "container")); code != 1 || !strings.Contains(stderr, "asking the agent") {
		t.Errorf("not exempt: exit %d, stderr %q", code, stderr)
	}
}
