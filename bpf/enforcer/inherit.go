package enforcer

import (
	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/profiles"
)

// Inherited is what the pinned maps held when Load took them over: the
// profile ids whose rules are there and the registered workloads. The
// agent moves each workload onto its freshly loaded profile and then
// unloads the inherited ids.
type Inherited struct {
	Profiles  []uint32                     `json:"profiles,omitempty"`
	Workloads map[uint64]InheritedWorkload `json:"workloads,omitempty"`
}

// InheritedWorkload is one workloads map entry found pinned.
type InheritedWorkload struct {
	Profile  uint32
	Monitor  bool
	Disabled [profiles.NumPoints]uint32
}

// Inherited returns what the pinned maps held at Load (empty when
// nothing was taken over).
func (e *Enforcer) Inherited() Inherited {
	out := Inherited{Profiles: append([]uint32(nil), e.inherited.Profiles...), Workloads: map[uint64]InheritedWorkload{}}
	for k, v := range e.inherited.Workloads {
		out.Workloads[k] = v
	}
	return out
}

// inherit takes the pinned maps' rules and workloads over: the rule map
// writer rebuilds its bookkeeping (rulemaps.Writer.Adopt), and the
// workloads are kept for the agent (Inherited).
func (e *Enforcer) inherit() error {
	got, err := e.rules.Adopt()
	if err != nil {
		return err
	}
	e.inherited = Inherited{Profiles: got.Profiles, Workloads: map[uint64]InheritedWorkload{}}
	for cg, wv := range got.Workloads {
		iw := InheritedWorkload{Profile: wv.Profile, Monitor: wv.Flags&bpf.WorkloadMonitor != 0}
		copy(iw.Disabled[:], wv.Disabled[:])
		e.inherited.Workloads[cg] = iw
	}
	e.log.Sugar().Infof("pinned maps hold %d profile(s) and %d workload(s)", len(e.inherited.Profiles), len(e.inherited.Workloads))
	return nil
}
