package main

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/api"
)

// Status shows every kind of event loss, and the followers with theirs.
func TestPrintStatusLosses(t *testing.T) {
	st := &api.Status{Node: "n", StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Counters: map[string]uint64{"kernel_events_lost": 3, "events_dropped_queue": 5, "events_sink_errors": 7,
			"events_dropped_subscribers": 11, "event_subscribers": 1},
		Subscribers: []api.Subscriber{{ID: 4, Filter: "container=web", Since: time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC), Sent: 20, Queued: 2, Dropped: 11}}}
	var out bytes.Buffer
	printStatus(&out, st)
	text := out.String()
	for _, want := range []string{
		"events lost:  kernel ring buffer 3, agent queue 5, sink 7, subscribers 11",
		"SUBSCRIBERS (1)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`(?m)^4\s+2026-01-02T04:00:00Z\s+container=web\s+20\s+2\s+11$`).MatchString(text) {
		t.Errorf("subscriber row missing:\n%s", text)
	}
	out.Reset()
	st.Subscribers = nil
	printStatus(&out, st)
	if strings.Contains(out.String(), "SUBSCRIBERS") {
		t.Errorf("subscriber section without subscribers:\n%s", out.String())
	}
}

// Workloads show their image (or "-") and whether they were adopted.
func TestPrintStatusWorkloads(t *testing.T) {
	st := &api.Status{Workloads: []*api.Workload{
		{ContainerID: "web", Runtime: "podman", Image: "localhost/shop/web:2", Profile: "shop", Mode: "enforce",
			Identity: api.Identity{CgroupID: 7, CgroupPath: "/a"}},
		{ContainerID: "old", Runtime: "runc", Adopted: true, Profile: "default", Mode: "enforce",
			Identity: api.Identity{CgroupID: 8, CgroupPath: "/b"}},
	}}
	var out bytes.Buffer
	printStatus(&out, st)
	for _, re := range []string{`(?m)^web\s+podman\s+localhost/shop/web:2\s+shop\s+enforce\s+7\s+/a$`,
		`(?m)^old\s+runc \(adopted\)\s+-\s+default\s+enforce\s+8\s+/b$`} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("no row matching %s:\n%s", re, out.String())
		}
	}
}

// status --wait waits for an agent that starts late, whatever the order
// of the flags.
func TestStatusWaitsForAgent(t *testing.T) {
	for i, order := range [][]string{
		{"--wait", "10s", "--socket", "SOCK", "-o", "json"},
		{"-o=json", "--socket=SOCK", "--timeout", "2s", "--wait=10s"},
	} {
		path := filepath.Join(t.TempDir(), "agentd.sock")
		serveAgent(t, path, 300*time.Millisecond, statusAgent{&api.Status{Node: fmt.Sprintf("node-%d", i)}})
		args := slices.Clone(order)
		for j := range args {
			args[j] = strings.ReplaceAll(args[j], "SOCK", path)
		}
		var out bytes.Buffer
		if err := status(args, &out); err != nil {
			t.Fatalf("status %q: %v", args, err)
		}
		if want := fmt.Sprintf(`"node": "node-%d"`, i); !strings.Contains(out.String(), want) {
			t.Errorf("status %q printed no %s:\n%s", args, want, out.String())
		}
	}
}

// Without an agent, status --wait gives up after the wait, naming the
// socket; without --wait it does not wait.
func TestStatusWaitGivesUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentd.sock")
	for _, c := range []struct {
		args      []string
		want      string
		min, most time.Duration
	}{
		{[]string{"--socket", path, "--wait", "300ms"}, "no agent answered within 300ms: agent at " + path, 300 * time.Millisecond, 2 * time.Second},
		{[]string{"--socket", path}, "agent at " + path + " is not reachable", 0, time.Second},
	} {
		start := time.Now()
		err := status(c.args, io.Discard)
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("status %q: got %v, want %q", c.args, err, c.want)
		}
		if took < c.min || took > c.most {
			t.Errorf("status %q gave up after %v, want %v to %v", c.args, took, c.min, c.most)
		}
	}
}

// Bad flags fail before any waiting.
func TestStatusFlagErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentd.sock")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--socket", path, "--wait", "1m", "-o", "xml"}, `-o "xml": want text or json or yaml`},
		{[]string{"--socket", path, "--wait", "-1s"}, "--wait -1s: want 0"},
		{[]string{"--socket", path, "--wait", "1m", "--timeout", "0s"}, "--timeout 0s: want a positive duration"},
		{[]string{"--socket", path, "now", "--wait", "1m"}, `unexpected arguments ["now"]`},
	} {
		start := time.Now()
		err := status(c.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("status %q: got %v, want %q", c.args, err, c.want)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("status %q took %v to fail", c.args, took)
		}
	}
}

// Points that do not enforce say UNAVAILABLE with the kernel's reason,
// and the header says the agent is degraded; an agent with every point
// (or one from before the field) shows no such line.
func TestPrintStatusUnavailablePoints(t *testing.T) {
	st := &api.Status{Backends: []api.Backend{
		{Point: "connect", Backend: "fallback", Mechanism: "cgroup/connect4+cgroup/connect6", Skipped: []string{"lsm: bpf is not active"}},
		{Point: "exec", Backend: "none", Mechanism: "unavailable", Skipped: []string{"lsm: bpf is not active", "fallback: EPERM"},
			Error: "no backend could attach: lsm: bpf is not active; fallback: EPERM"},
	}}
	var out bytes.Buffer
	printStatus(&out, st)
	text := out.String()
	for _, re := range []string{
		`(?m)^enforcement:\s+degraded: 1 point unavailable \(exec\); workloads whose profile needs them are refused$`,
		`(?m)^exec\s+UNAVAILABLE\s+no backend could attach: lsm: bpf is not active; fallback: EPERM$`,
		`(?m)^connect\s+fallback\s+cgroup/connect4\+cgroup/connect6\n\s+not lsm: bpf is not active$`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("no match for %s:\n%s", re, text)
		}
	}
	if strings.Contains(text, "not fallback: EPERM") {
		t.Errorf("an unavailable point's skipped backends are listed twice:\n%s", text)
	}
	out.Reset()
	st.Backends = st.Backends[:1]
	printStatus(&out, st)
	if strings.Contains(out.String(), "enforcement:") || strings.Contains(out.String(), "UNAVAILABLE") {
		t.Errorf("degraded without an unavailable point:\n%s", out.String())
	}
}

// status --fail-degraded, the DaemonSet's probe, fails while a point a
// loaded profile needs does not enforce and passes when every such point
// does; without the flag a degraded agent's status succeeds.
func TestStatusFailDegraded(t *testing.T) {
	for _, c := range []struct {
		backends []api.Backend
		probe    bool
		want     string
	}{
		{[]api.Backend{{Point: "connect", Backend: "fallback"}, {Point: "exec", Error: "no backend attached"}}, true, "enforcement degraded: 1 point unavailable (exec)"},
		{[]api.Backend{{Point: "connect", Backend: "fallback"}, {Point: "exec", Error: "no backend attached"}}, false, ""},
		{[]api.Backend{{Point: "connect", Backend: "fallback"}, {Point: "exec", Backend: "fallback"}}, true, ""},
		// A point no loaded profile needs (receive on Debian's 6.1) is no
		// reason to take the node's agent out of service.
		{[]api.Backend{{Point: "connect", Backend: "fallback"}, {Point: "receive", Error: "unknown func", Unneeded: true}}, true, ""},
	} {
		path := filepath.Join(t.TempDir(), "agentd.sock")
		serveAgent(t, path, 0, statusAgent{&api.Status{Node: "n", Backends: c.backends}})
		args := []string{"--socket", path, "--summary"}
		if c.probe {
			args = append(args, "--fail-degraded")
		}
		err := status(args, io.Discard)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("status %q with %v: got %v, want %q", args, c.backends, err, c.want)
		}
	}
}
