package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
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
	st := &api.Status{Workloads: []*cgroupfilter.Workload{
		{ContainerID: "web", Runtime: "podman", Image: "localhost/shop/web:2", Profile: "shop", Mode: "enforce",
			Identity: cgroupfilter.Identity{CgroupID: 7, CgroupPath: "/a"}},
		{ContainerID: "old", Runtime: "runc", Adopted: true, Profile: "default", Mode: "enforce",
			Identity: cgroupfilter.Identity{CgroupID: 8, CgroupPath: "/b"}},
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
