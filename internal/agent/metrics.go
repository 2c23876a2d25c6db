package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/events"
)

// KernelStats are enforcer statistics the metrics report when the
// enforcer has them (*enforcer.Enforcer does).
type KernelStats interface {
	ProgramStats() ([]enforcer.ProgramStat, error)
	MapFill() ([]enforcer.MapFill, error)
}

// metrics are the instruments the agent updates as it works; everything
// else is read from its counters when scraped.
type metrics struct {
	events   *prometheus.CounterVec
	register prometheus.Histogram
	// counters caches events' children: the event reader alone uses it.
	counters map[eventLabels]prometheus.Counter
}

type eventLabels struct{ typ, action, policy string }

func newMetrics() *metrics {
	return &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ocigate_events_total",
			Help: "Events the agent converted from the kernel's reports, by event type, Tetragon action and policy.",
		}, []string{"type", "action", "policy"}),
		register: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ocigate_hook_registration_seconds",
			Help:    "Time the agent took to handle a successful registration, maps written.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 15), // 0.1 ms .. 1.6 s
		}),
	}
}

// event counts ev; called by the event reader only.
func (m *metrics) event(ev *events.Event) {
	l := eventLabels{typ: ev.Type(), policy: ev.Policy()}
	if k := ev.Hook(); k != nil {
		l.action = k.Action
	}
	c, ok := m.counters[l]
	if !ok {
		if m.counters == nil {
			m.counters = map[eventLabels]prometheus.Counter{}
		}
		c = m.events.WithLabelValues(l.typ, l.action, l.policy)
		m.counters[l] = c
	}
	c.Inc()
}

// Metrics returns a registry with the agent's ocigate_* metrics; the
// counters are read when it is gathered.
func (a *Agent) Metrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.metrics.events, a.metrics.register, &collector{a: a})
	return reg
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descLost = desc("ocigate_events_lost_total",
		"Events lost: kernel (ring buffer full), queue (the agent's queue to the events file full), sink (the events file failed), subscriber (an API subscriber's queue full).", "where")
	descWritten       = desc("ocigate_events_written_total", "Events written to the events file or stdout.")
	descWrittenBytes  = desc("ocigate_events_written_bytes_total", "Bytes of events written to the events file or stdout.")
	descWriteSeconds  = desc("ocigate_events_write_seconds_total", "Time spent writing events to the events file or stdout (its write calls): against the bytes, the rate the sink takes them at.")
	descDecodeErrors  = desc("ocigate_event_decode_errors_total", "Ring buffer records the agent could not decode.")
	descAgentKills    = desc("ocigate_agent_kills_total", "Signals the kernel left to the agent and the agent sent.")
	descWorkloads     = desc("ocigate_workloads_registered", "Containers registered and enforced.")
	descSubscribers   = desc("ocigate_event_subscribers", "API clients following the events.")
	descProcessCache  = desc("ocigate_process_cache_entries", "Workload processes the agent remembers for lineage and exec_id.")
	descRegistrations = desc("ocigate_registrations_total", "Registrations handled, by result.", "result")
	descUnregister    = desc("ocigate_unregistrations_total", "Containers unregistered.")
	descReconciled    = desc("ocigate_workloads_reconciled_total", "Workloads dropped by the periodic check or the cgroup watch because their container was gone without being unregistered.")
	descReloads       = desc("ocigate_profile_reloads_total", "Profile reloads, by result.", "result")
	descClaims        = desc("ocigate_claims_total", "Claims of containers' specs to weaker protection, by what was done: refused (the container did not start) or ignored (its identity's profile stands).", "action")
	descBackend       = desc("ocigate_enforcer_backend", "How each enforcement point is carried out (always 1).", "point", "backend", "mechanism")
	descAvailable     = desc("ocigate_enforcement_point_available",
		"Whether each enforcement point (and tracking) enforces on this kernel: 1, or 0 when no backend could attach, with the kernel's reason (in full in ocigate-agentd status).", "point", "reason")
	descAttached = desc("ocigate_enforcement_point_attached",
		"Whether each enforcement point's programs are attached now: 1, or 0 when it is unavailable or, for a per-packet point (receive, xmit, drop), while no loaded profile needs it.", "point")
	descPoint = desc("ocigate_point_checks_total",
		"The kernel's counts per enforcement point: evaluated (a registered workload's operation checked), posted, denied, killed.", "point", "outcome")
	descRunSeconds = desc("ocigate_bpf_program_run_seconds_total", "Run time of each attached BPF program (counted while kernel.bpf_stats_enabled=1).", "program", "mechanism")
	descRuns       = desc("ocigate_bpf_program_runs_total", "Runs of each attached BPF program (counted while kernel.bpf_stats_enabled=1).", "program", "mechanism")
	descMapEntries = desc("ocigate_bpf_map_entries", "Entries in each of the enforcer's maps that fill up.", "map")
	descMapMax     = desc("ocigate_bpf_map_max_entries", "Size of each of the enforcer's maps that fill up.", "map")
)

// collector reads the agent's and the kernel's counters at scrape time.
type collector struct{ a *Agent }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLost, descWritten, descWrittenBytes, descWriteSeconds, descDecodeErrors, descAgentKills, descWorkloads,
		descSubscribers, descProcessCache, descRegistrations, descUnregister, descReconciled, descReloads, descClaims, descBackend, descAvailable, descAttached, descPoint,
		descRunSeconds, descRuns, descMapEntries, descMapMax} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	a, s := c.a, c.a.stats
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(descLost, s.EventsDropped.Load(), "queue")
	counter(descLost, s.SinkErrors.Load(), "sink")
	counter(descLost, a.hub.Dropped(), "subscriber")
	counter(descWritten, s.EventsWritten.Load())
	counter(descWrittenBytes, s.EventsBytesWritten.Load())
	ch <- prometheus.MustNewConstMetric(descWriteSeconds, prometheus.CounterValue, float64(s.EventsWriteMicros.Load())/1e6)
	counter(descDecodeErrors, s.EventErrors.Load())
	counter(descAgentKills, s.AgentKills.Load())
	gauge(descWorkloads, float64(len(a.reg.List())))
	gauge(descSubscribers, float64(len(a.hub.Subscribers())))
	gauge(descProcessCache, float64(s.ProcessCache.Load()))
	counter(descRegistrations, s.Registrations.Load(), "ok")
	counter(descRegistrations, s.RegistrationErrors.Load(), "error")
	counter(descUnregister, s.Unregistrations.Load())
	counter(descReconciled, s.Reconciled.Load())
	counter(descReloads, s.ProfileReloads.Load(), "ok")
	counter(descReloads, s.ProfileReloadErrors.Load(), "error")
	counter(descClaims, s.ClaimsRefused.Load(), "refused")
	counter(descClaims, s.ClaimsIgnored.Load(), "ignored")
	for _, b := range a.enf.Backends() {
		gauge(descBackend, 1, b.Point, b.Backend, b.Mechanism)
		available, reason := 1.0, ""
		if why, out := a.unavailable[b.Point]; out {
			available, reason = 0, metricReason(why)
		}
		gauge(descAvailable, available, b.Point, reason)
		attached := 1.0
		if b.Detached || available == 0 {
			attached = 0
		}
		gauge(descAttached, attached, b.Point)
	}
	if kc, err := a.enf.Counters(); err != nil {
		a.log.Warn("metrics: kernel counters unavailable", zap.Error(err))
	} else {
		counter(descLost, kc.EventsLost, "kernel")
		for pt, pc := range kc.Points {
			counter(descPoint, pc.Evaluated, pt, "evaluated")
			counter(descPoint, pc.Posted, pt, "posted")
			counter(descPoint, pc.Denied, pt, "denied")
			counter(descPoint, pc.Killed, pt, "killed")
		}
	}
	ks, ok := a.enf.(KernelStats)
	if !ok {
		return
	}
	if progs, err := ks.ProgramStats(); err != nil {
		a.log.Warn("metrics: BPF program statistics unavailable", zap.Error(err))
	} else {
		for _, p := range progs {
			ch <- prometheus.MustNewConstMetric(descRunSeconds, prometheus.CounterValue, p.RunTime.Seconds(), p.Program, p.Mechanism)
			counter(descRuns, p.RunCount, p.Program, p.Mechanism)
		}
	}
	fill, err := ks.MapFill()
	if err != nil {
		a.log.Warn("metrics: BPF map fill levels unavailable", zap.Error(err))
	}
	for _, f := range fill {
		gauge(descMapEntries, float64(f.Entries), f.Map)
		gauge(descMapMax, float64(f.MaxEntries), f.Map)
	}
}

// metricReason is a reason as a label value: one line, at most 200 bytes.
func metricReason(why string) string {
	why = oneLine(why)
	if len(why) > 200 {
		why = why[:200] + "…"
	}
	return why
}
