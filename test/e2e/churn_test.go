package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv"
)

// Churn sizes: OCIGATE_CHURN containers (default 100), OCIGATE_CHURN_PARALLEL
// at a time (default 4).
const (
	defaultChurn         = 100
	defaultChurnParallel = 4
	// hookBudget is what the createRuntime hook's p99 may take during the
	// churn: a tenth of its default --timeout (2 s).
	hookBudget = 200 * time.Millisecond
)

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// timedHook wraps the createRuntime hook so that each run appends its
// wall time (ns) to log: bash's $EPOCHREALTIME costs no fork.
func timedHook(socket, log string) testenv.Hook {
	script := `s=$EPOCHREALTIME; "$0" "$@"; rc=$?; e=$EPOCHREALTIME; echo "${s/./} ${e/./} $rc" >>` + shellQuote(log) + `; exit $rc`
	return testenv.Hook{Path: "/bin/bash", Args: append([]string{"bash", "-c", script, hookBin}, hookArgs(socket, "createRuntime")[1:]...), Timeout: 10}
}

// hookTimes reads the wrapper's log: durations of successful runs, and
// the number of failed ones.
func hookTimes(t *testing.T, log string) ([]time.Duration, int) {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Duration
	failed := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("hook timing line %q", line)
		}
		s, err1 := strconv.ParseInt(f[0], 10, 64)
		e, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("hook timing line %q", line)
		}
		if f[2] != "0" {
			failed++
			continue
		}
		out = append(out, time.Duration(e-s)*time.Microsecond)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, failed
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d))*p+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// Containers started and stopped against a running agent, a few at a
// time: every one is enforced while it runs, and afterwards the agent
// holds no workload, map entry, record, goroutine or file descriptor more
// than before; the hook's p99 stays within its budget.
func TestChurnLeavesNothingBehind(t *testing.T) {
	requireE2E(t)
	n := envInt(t, "OCIGATE_CHURN", defaultChurn)
	par := envInt(t, "OCIGATE_CHURN_PARALLEL", defaultChurnParallel)
	a := startOwnAgent(t, "churn")
	base := a.mustStatus().Counters
	timing := filepath.Join(t.TempDir(), "hook-times.txt")

	var (
		next       atomic.Int64
		unenforced atomic.Int64
		mu         sync.Mutex
		failures   []string
		wg         sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if msg := churnOne(t, a.socket, timing); msg != "" {
					if strings.HasPrefix(msg, "unenforced") {
						unenforced.Add(1)
					}
					mu.Lock()
					failures = append(failures, msg)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(failures) > 0 {
		t.Errorf("%d of %d containers failed (%d unenforced); first: %s", len(failures), n, unenforced.Load(), failures[0])
	}

	times, failed := hookTimes(t, timing)
	p50, p99 := percentile(times, 0.5), percentile(times, 0.99)
	t.Logf("%d containers, %d at a time, in %v: hook createRuntime p50 %v, p99 %v, max %v (%d failed runs)",
		n, par, elapsed.Round(time.Millisecond), p50, p99, percentile(times, 1), failed)
	if len(times) != n || failed != 0 {
		t.Errorf("%d hook runs succeeded and %d failed, want %d and 0", len(times), failed, n)
	}
	if p99 > hookBudget {
		t.Errorf("hook p99 %v during the churn, budget %v", p99, hookBudget)
	}

	// Leaks: wait for the agent to settle (connections served, timers).
	st, ok := a.waitStatus(10*time.Second, func(s *ownState) bool {
		c := s.Counters
		return len(s.Workloads) == 0 && c["workloads_map_entries"] == 0 && c["workload_records"] == 0 &&
			c["agent_goroutines"] <= base["agent_goroutines"] && c["agent_open_fds"] <= base["agent_open_fds"]
	})
	c := st.Counters
	t.Logf("before: goroutines %d, fds %d, RSS %d KiB; after: goroutines %d, fds %d, RSS %d KiB; registrations %d, unregistrations %d",
		base["agent_goroutines"], base["agent_open_fds"], base["agent_rss_bytes"]>>10,
		c["agent_goroutines"], c["agent_open_fds"], c["agent_rss_bytes"]>>10, c["registrations"], c["unregistrations"])
	if !ok {
		t.Errorf("after the churn: %d workloads, counters %v", len(st.Workloads), c)
	}
	// A container whose poststop comes after the periodic check saw its
	// cgroup go is dropped by the check instead: either way, once.
	if gone := c["unregistrations"] + c["workloads_reconciled"]; c["registrations"] != uint64(n) || gone != uint64(n) {
		t.Errorf("registrations %d, unregistrations %d + dropped by the periodic check %d; want %d each", c["registrations"],
			c["unregistrations"], c["workloads_reconciled"], n)
	}
	if entries, err := os.ReadDir(a.stateDir); err != nil || len(entries) != 0 {
		t.Errorf("workload records left: %d (%v)", len(entries), err)
	}
}

// churnOne runs one container whose first connect must be refused; it
// returns "" or what went wrong.
func churnOne(t *testing.T, socket, timing string) string {
	id := newID("churn")
	bundle, err := os.MkdirTemp("", "ocigate-churn-")
	if err != nil {
		return err.Error()
	}
	defer os.RemoveAll(bundle)
	b := bundleFor(id, ctrOpts{Name: "churn", Socket: socket, Args: []string{"/probe", "connect", "127.0.0.2:5100"}})
	b.CreateRuntime = []testenv.Hook{timedHook(socket, timing)}
	if err := testenv.WriteBundle(bundle, b); err != nil {
		return err.Error()
	}
	stdout, stderr, code, err := testenv.RunRunc(context.Background(), bundle, id, containerTimeout)
	defer func() {
		if err := testenv.RemoveCgroup(cgroupParent + "/" + id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}()
	switch {
	case err != nil:
		return fmt.Sprintf("%s: %v", id, err)
	case strings.TrimSpace(stdout) != "error: operation not permitted":
		return fmt.Sprintf("unenforced %s: exit %d, stdout %q, stderr %q", id, code, stdout, stderr)
	}
	return ""
}
