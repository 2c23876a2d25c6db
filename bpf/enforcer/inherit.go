package enforcer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

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

// markTrackedSockets sets socks_tracked when sock_owners holds entries:
// releases skip the untrack until a socket has been tracked (bpf/maps.h),
// and a build without that flag may have tracked the pinned entries. It
// runs once the programs are attached, so that the entries the replaced
// track_sock made up to its replacement are seen too.
func (e *Enforcer) markTrackedSockets() error {
	var cookie uint64
	if err := e.maps.SockOwners.NextKey(nil, &cookie); errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read sock_owners: %w", err)
	}
	if err := e.maps.SocksTracked.Update(uint32(0), uint32(1), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("set socks_tracked: %w", err)
	}
	return nil
}
