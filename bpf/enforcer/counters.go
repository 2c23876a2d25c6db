package enforcer

import (
	"fmt"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/profiles"
)

// PointCounters are the kernel's counts for one enforcement point.
type PointCounters struct {
	Evaluated uint64 `json:"evaluated"`
	Posted    uint64 `json:"posted"`
	Denied    uint64 `json:"denied"`
	Killed    uint64 `json:"killed"`
}

// Counters are the kernel's counts, summed over CPUs.
type Counters struct {
	EventsLost uint64                   `json:"events_lost"`
	Points     map[string]PointCounters `json:"points"`
}

// Counters reads the per-CPU counters.
func (e *Enforcer) Counters() (Counters, error) {
	c := Counters{Points: map[string]PointCounters{}}
	read := func(idx uint32) (uint64, error) {
		var per []uint64
		if err := e.maps.Counters.Lookup(idx, &per); err != nil {
			return 0, fmt.Errorf("read counter %d: %w", idx, err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		return sum, nil
	}
	var err error
	if c.EventsLost, err = read(bpf.CounterEventsLost); err != nil {
		return c, err
	}
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		var v [4]uint64
		for o := range v {
			if v[o], err = read(bpf.CounterPointBase + uint32(pt)*4 + uint32(o)); err != nil {
				return c, err
			}
		}
		c.Points[pt.String()] = PointCounters{Evaluated: v[0], Posted: v[1], Denied: v[2], Killed: v[3]}
	}
	return c, nil
}
