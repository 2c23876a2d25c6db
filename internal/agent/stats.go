package agent

import (
	"sync/atomic"

	"github.com/ocigate/ocigate/internal/api"
)

// Stats are the agent's own counters.
type Stats struct {
	Registrations      atomic.Uint64
	RegistrationErrors atomic.Uint64
	// RegistrationsUnavailable: refused because their profile needs an
	// enforcement point this kernel does not enforce (also counted in
	// RegistrationErrors).
	RegistrationsUnavailable atomic.Uint64
	Unregistrations          atomic.Uint64
	Reconciled               atomic.Uint64 // workloads dropped because their container was gone
	Adopted                  atomic.Uint64 // running containers registered by the agent itself
	RuntimeEventDrops        atomic.Uint64 // workloads unregistered on a runtime's exit or delete event
	CgroupWatchErrors        atomic.Uint64 // registered cgroups not watched (left to the periodic check)
	RuntimeLookupErrors      atomic.Uint64 // registrations whose runtime could not be asked for the image
	EventsWritten            atomic.Uint64 // written out by the sink
	EventsBytesWritten       atomic.Uint64 // the sink's bytes written out
	EventsWriteMicros        atomic.Uint64 // time in the sink's writes (us)
	EventsDropped            atomic.Uint64 // user-space queue full
	SinkErrors               atomic.Uint64 // events the sink failed to encode or write
	EventErrors              atomic.Uint64 // undecodable ring buffer records
	AgentKills               atomic.Uint64 // SIGKILLs the kernel left to the agent
	ProfileReloads           atomic.Uint64
	ProfileReloadErrors      atomic.Uint64
	WorkloadsRestored        atomic.Uint64 // taken over from pinned maps at start
	WorkloadsDropped         atomic.Uint64 // found pinned or recorded at start, but gone
	StateErrors              atomic.Uint64 // workload records not written
	ProcessCache             atomic.Uint64 // processes the agent remembers (a gauge)
	ClaimsRefused            atomic.Uint64 // containers refused for a claim to weaker protection (docs/trust.md)
	ClaimsIgnored            atomic.Uint64 // claims to weaker protection ignored
	// NRIConnected is 1 while the NRI plugin is synchronized with the
	// runtime (a gauge, api.CounterNRIConnected), shown once NRIEnabled.
	NRIConnected atomic.Uint64
	NRIEnabled   atomic.Bool
}

// Map flattens the counters for status output.
func (s *Stats) Map() map[string]uint64 {
	m := s.counters()
	if s.NRIEnabled.Load() {
		m[api.CounterNRIConnected] = s.NRIConnected.Load()
	}
	return m
}

func (s *Stats) counters() map[string]uint64 {
	return map[string]uint64{
		"registrations":                     s.Registrations.Load(),
		"registration_errors":               s.RegistrationErrors.Load(),
		"registrations_refused_unavailable": s.RegistrationsUnavailable.Load(),
		"unregistrations":                   s.Unregistrations.Load(),
		"workloads_reconciled":              s.Reconciled.Load(),
		"workloads_adopted":                 s.Adopted.Load(),
		"runtime_event_unregistrations":     s.RuntimeEventDrops.Load(),
		"cgroup_watch_errors":               s.CgroupWatchErrors.Load(),
		"runtime_lookup_errors":             s.RuntimeLookupErrors.Load(),
		"events_written":                    s.EventsWritten.Load(),
		"events_bytes_written":              s.EventsBytesWritten.Load(),
		"events_write_us":                   s.EventsWriteMicros.Load(),
		"events_dropped_queue":              s.EventsDropped.Load(),
		"events_sink_errors":                s.SinkErrors.Load(),
		"event_decode_errors":               s.EventErrors.Load(),
		"agent_kills":                       s.AgentKills.Load(),
		"profile_reloads":                   s.ProfileReloads.Load(),
		"profile_reload_errors":             s.ProfileReloadErrors.Load(),
		"workloads_restored":                s.WorkloadsRestored.Load(),
		"workloads_dropped":                 s.WorkloadsDropped.Load(),
		"state_errors":                      s.StateErrors.Load(),
		"process_cache_entries":             s.ProcessCache.Load(),
		"claims_refused":                    s.ClaimsRefused.Load(),
		"claims_ignored":                    s.ClaimsIgnored.Load(),
	}
}
