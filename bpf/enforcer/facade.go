package enforcer

import (
	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/profiles"
)

// The agent's calls that the enforcer passes on: profiles and workloads
// go to the rule maps' writer (bpf/rulemaps), records come from the
// ring buffer's reader (bpf/record).

// LoadProfile writes a compiled profile's selectors under id. Loading the
// same id again replaces them point by point: each point's rules are one
// map value, swapped atomically, and the sets the old rules used are
// deleted only afterwards.
func (e *Enforcer) LoadProfile(id uint32, p *profiles.Profile) error {
	return e.rules.LoadProfile(id, p)
}

// UnloadProfile deletes a profile's rules and then its sets. Workloads
// must have been moved off it first.
func (e *Enforcer) UnloadProfile(id uint32) error {
	return e.rules.UnloadProfile(id)
}

// SetWorkload enforces profile id on a cgroup and everything below it.
// disabled[point] has bit i set for selectors that cannot match this
// workload (its namespaces rule them out).
func (e *Enforcer) SetWorkload(cgroupID uint64, profile uint32, mode profiles.Mode, disabled [profiles.NumPoints]uint32) error {
	return e.rules.SetWorkload(cgroupID, profile, mode, disabled)
}

// RemoveWorkload stops enforcing on a cgroup; a cgroup not present is fine.
func (e *Enforcer) RemoveWorkload(cgroupID uint64) error {
	return e.rules.RemoveWorkload(cgroupID)
}

// WorkloadCgroups lists the cgroup IDs present in the workloads map.
func (e *Enforcer) WorkloadCgroups() ([]uint64, error) {
	return e.rules.WorkloadCgroups()
}

// NewEventReader opens the ring buffer of the kernel's records.
func (e *Enforcer) NewEventReader() (*record.Reader, error) {
	return record.NewReader(e.maps.Events, e.maps.StackTraces, e.maps.ReaderSleeps)
}
