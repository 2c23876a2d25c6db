package agent

import "sync/atomic"

// Stats are the agent's own counters.
type Stats struct {
	Registrations       atomic.Uint64
	RegistrationErrors  atomic.Uint64
	Unregistrations     atomic.Uint64
	EventsWritten       atomic.Uint64 // written out by the sink
	EventsDropped       atomic.Uint64 // user-space queue full
	SinkErrors          atomic.Uint64 // events the sink failed to encode or write
	EventErrors         atomic.Uint64 // undecodable ring buffer records
	AgentKills          atomic.Uint64 // SIGKILLs the kernel left to the agent
	ProfileReloads      atomic.Uint64
	ProfileReloadErrors atomic.Uint64
	ProcessCache        atomic.Uint64 // processes the agent remembers (a gauge)
}

// Map flattens the counters for status output.
func (s *Stats) Map() map[string]uint64 {
	return map[string]uint64{
		"registrations":         s.Registrations.Load(),
		"registration_errors":   s.RegistrationErrors.Load(),
		"unregistrations":       s.Unregistrations.Load(),
		"events_written":        s.EventsWritten.Load(),
		"events_dropped_queue":  s.EventsDropped.Load(),
		"events_sink_errors":    s.SinkErrors.Load(),
		"event_decode_errors":   s.EventErrors.Load(),
		"agent_kills":           s.AgentKills.Load(),
		"profile_reloads":       s.ProfileReloads.Load(),
		"profile_reload_errors": s.ProfileReloadErrors.Load(),
		"process_cache_entries": s.ProcessCache.Load(),
	}
}
