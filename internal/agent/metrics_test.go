package agent

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/eventhub"
	"github.com/ocigate/ocigate/internal/events"
)

// scrape fetches /metrics as Prometheus would and returns its samples,
// "name{labels}" -> value as printed; HELP and TYPE lines are checked to
// name only ocigate_* metrics.
func scrape(t *testing.T, a *Agent) map[string]string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(a.Metrics(), promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s: %s", resp.Status, b)
	}
	samples := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# ") {
			if f := strings.Fields(line); len(f) < 3 || !strings.HasPrefix(f[2], "ocigate_") {
				t.Errorf("metric not named ocigate_*: %q", line)
			}
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad sample line %q", line)
		}
		samples[line[:i]] = line[i+1:]
	}
	return samples
}

// metricsFixture is an agent whose enforcer has counters, program
// stats and map fills to report, after one registration that succeeded
// (the fixture's) and one that failed, and a reload that worked and one
// that did not; cg is its workload's cgroup.
func metricsFixture(t *testing.T) (a *Agent, cg uint64) {
	a, cg = streamFixture(t, eventhub.Config{Queue: 1})
	enf := a.enf.(*fakeEnforcer)
	enf.counters = enforcer.Counters{EventsLost: 9, Points: map[string]enforcer.PointCounters{"connect": {Evaluated: 5, Posted: 1, Denied: 2}}}
	enf.progStats = []enforcer.ProgramStat{{Program: "connect4", Mechanism: "cgroup/connect4", RunCount: 10, RunTime: 2500 * time.Nanosecond},
		{Program: "track_exec", Mechanism: "raw_tracepoint/sched_process_exec", RunCount: 3, RunTime: time.Microsecond},
		{Program: "relay_exec", Mechanism: "raw_tracepoint/sched_process_exec", RunCount: 3, RunTime: 2 * time.Microsecond}}
	enf.mapFill = []enforcer.MapFill{{Map: "workloads", Entries: 1, MaxEntries: 16384}, {Map: "addr_sets", Entries: 3, MaxEntries: 262144}}
	// One registration succeeded (the fixture's), one fails.
	if _, err := a.Register(newFakeHost(t).registration("c2", 200, "/pods/c2")); err == nil {
		t.Fatal("registration of a cgroup of another host succeeded")
	}
	// A reload that works and one that does not.
	if err := a.Reload(testCatalog(t)); err != nil {
		t.Fatal(err)
	}
	enf.failLoad = errors.New("map full")
	if err := a.Reload(testCatalog(t)); err == nil {
		t.Fatal("reload succeeded with a failing enforcer")
	}
	enf.failLoad = nil
	return a, cg
}

func TestMetricsScrape(t *testing.T) {
	a, cg := metricsFixture(t)
	// A follower that never reads (queue of one) loses all but one event.
	_, sub, err := a.Events().Subscribe(eventhub.Filter{}, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Events().Unsubscribe(sub)
	exec := execRaw(cg)
	src := newFakeSource(connectRaw(cg), connectRaw(cg), errors.New("short record"), exec)
	src.drain = true
	sink := &syncBuffer{}
	a.RunEvents(context.Background(), src, events.NewWriter(sink))
	execPolicy := a.convert(execRaw(cg), time.Now()).ProcessKprobe.PolicyName

	got := scrape(t, a)
	want := map[string]string{
		`ocigate_events_total{action="KPROBE_ACTION_OVERRIDE",policy="ocigate-default",type="process_kprobe"}`:      "2",
		`ocigate_events_total{action="KPROBE_ACTION_SIGKILL",policy="` + execPolicy + `",type="process_kprobe"}`:    "1",
		`ocigate_events_lost_total{where="kernel"}`:                                                                 "9",
		`ocigate_events_lost_total{where="queue"}`:                                                                  "0",
		`ocigate_events_lost_total{where="sink"}`:                                                                   "0",
		`ocigate_events_lost_total{where="subscriber"}`:                                                             "2",
		`ocigate_events_written_total`:                                                                              "3",
		`ocigate_events_written_bytes_total`:                                                                        strconv.Itoa(len(sink.String())),
		`ocigate_event_decode_errors_total`:                                                                         "1",
		`ocigate_workloads_registered`:                                                                              "1",
		`ocigate_event_subscribers`:                                                                                 "1",
		`ocigate_registrations_total{result="ok"}`:                                                                  "1",
		`ocigate_registrations_total{result="error"}`:                                                               "1",
		`ocigate_hook_registration_seconds_count`:                                                                   "1",
		`ocigate_profile_reloads_total{result="ok"}`:                                                                "1",
		`ocigate_profile_reloads_total{result="error"}`:                                                             "1",
		`ocigate_enforcer_backend{backend="fallback",mechanism="cgroup/connect4",point="connect"}`:                  "1",
		`ocigate_point_checks_total{outcome="evaluated",point="connect"}`:                                           "5",
		`ocigate_point_checks_total{outcome="denied",point="connect"}`:                                              "2",
		`ocigate_bpf_program_runs_total{mechanism="cgroup/connect4",program="connect4"}`:                            "10",
		`ocigate_bpf_program_run_seconds_total{mechanism="cgroup/connect4",program="connect4"}`:                     "2.5e-06",
		`ocigate_bpf_program_run_seconds_total{mechanism="raw_tracepoint/sched_process_exec",program="track_exec"}`: "1e-06",
		`ocigate_bpf_program_run_seconds_total{mechanism="raw_tracepoint/sched_process_exec",program="relay_exec"}`: "2e-06",
		`ocigate_bpf_map_entries{map="addr_sets"}`:                                                                  "3",
		`ocigate_bpf_map_max_entries{map="workloads"}`:                                                              "16384",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if got[`ocigate_events_write_seconds_total`] == "" {
		t.Error("no ocigate_events_write_seconds_total")
	}
	if execPolicy == "" {
		t.Error("the exec event has no policy: the label check above proves little")
	}
	if t.Failed() {
		for k, v := range got {
			t.Logf("%s %s", k, v)
		}
	}
	// The histogram's sum is the registration's time, within reason.
	if s := got["ocigate_hook_registration_seconds_sum"]; s == "" || s == "0" || strings.HasPrefix(s, "-") {
		t.Errorf("registration histogram sum %q", s)
	}
}

// A kernel whose counters cannot be read leaves its metrics out and the
// scrape succeeds.
func TestMetricsKernelCountersFail(t *testing.T) {
	a, _ := streamFixture(t, eventhub.Config{})
	a.enf.(*fakeEnforcer).countErr = errors.New("map gone")
	got := scrape(t, a)
	if _, ok := got[`ocigate_events_lost_total{where="kernel"}`]; ok {
		t.Error("kernel loss reported without kernel counters")
	}
	if got[`ocigate_workloads_registered`] != "1" {
		t.Errorf("agent metrics missing: %v", got)
	}
}
