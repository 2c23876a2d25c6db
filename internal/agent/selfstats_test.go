package agent

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/api"
)

// A status answer lists as many workloads as fit the message size and
// counts the others; a summary lists none.
func TestStatusWorkloadsBounded(t *testing.T) {
	h := newFakeHost(t)
	a := newTestAgent(t, h, newFakeEnforcer())
	big := map[string]string{"note": strings.Repeat("x", 100<<10)}
	for i := 0; i < 12; i++ {
		r := h.registration(fmt.Sprintf("c%02d", i), 100+i, fmt.Sprintf("/pods/c%d", i))
		r.Annotations = big
		if _, err := a.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := a.Handle(context.Background(), &api.Request{Op: api.OpStatus})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.Status
	if len(st.Workloads) == 0 || len(st.Workloads)+st.WorkloadsOmitted != 12 || st.WorkloadsOmitted == 0 {
		t.Fatalf("%d listed, %d omitted", len(st.Workloads), st.WorkloadsOmitted)
	}
	if err := api.WriteMessage(io.Discard, resp); err != nil {
		t.Fatalf("status answer does not fit a message: %v", err)
	}
	resp, err = a.Handle(context.Background(), &api.Request{Op: api.OpStatus, Status: &api.StatusOptions{Summary: true}})
	if err != nil || len(resp.Status.Workloads) != 0 || resp.Status.WorkloadsOmitted != 12 || resp.Status.Counters["workloads_registered"] != 12 {
		t.Fatalf("summary %+v, %v", resp.Status, err)
	}
}

// Status carries the agent's own counters the leak checks read.
func TestSelfCounters(t *testing.T) {
	h := newFakeHost(t)
	a := newTestAgent(t, h, newFakeEnforcer())
	c := a.Status().Counters
	if c["agent_goroutines"] == 0 || c["agent_open_fds"] == 0 || c["agent_rss_bytes"] < 1<<20 {
		t.Fatalf("counters %v", c)
	}
	if rss, ok := vmRSS(); !ok || rss < 1<<20 {
		t.Fatalf("vmRSS = %d, %v", rss, ok)
	}
}
