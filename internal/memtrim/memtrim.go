// Package memtrim gives the Go heap's free memory back to the system
// once a burst is over. The collector lets the heap grow to twice the
// live heap between collections (GOGC 100), and the runtime keeps the
// pages freed below the memory limit: after a burst of registrations or
// events, a node agent would hold ~20 MiB it no longer uses, for as
// long as it runs.
package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of Trimmer's fields (zero values take them).
const (
	DefaultInterval = time.Second
	DefaultMinFree  = 1 << 20
	DefaultSpacing  = 2 * time.Second
)

// Trimmer looks at the heap every Interval and returns its free memory
// (debug.FreeOSMemory: a collection, then every free page) when at least
// MinFree bytes are free or garbage (allocated since the last collection
// and no longer live: a burst that ends below the collector's goal
// leaves its garbage uncollected) and the last Interval allocated less
// than half of them: the burst that grew the heap is over, and what the
// agent allocates now fits in what stays. It trims at most once per Spacing,
// so a steady allocation rate does not turn into collections.
//
// Returning every free page holds the heap's lock while it runs, and the
// agent's event reader and writer allocate: Busy, when set, tells that
// work is flowing that a pause would back up (events at a high rate),
// and no trim is made while it says so.
type Trimmer struct {
	Interval time.Duration
	MinFree  uint64
	Spacing  time.Duration
	Busy     func() bool

	samples    []metrics.Sample
	lastAllocs uint64
	lastTrim   time.Time
	trims      int    // what it did
	trim       func() // debug.FreeOSMemory; tests replace it
}

const (
	metricFree    = "/memory/classes/heap/free:bytes"
	metricAllocs  = "/gc/heap/allocs:bytes"
	metricObjects = "/memory/classes/heap/objects:bytes" // live and garbage not yet collected
	metricLive    = "/gc/heap/live:bytes"                // live after the last collection
)

// Run trims until ctx ends.
func (t *Trimmer) Run(ctx context.Context) {
	t.init()
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			t.Check(now)
		}
	}
}

func (t *Trimmer) init() {
	if t.Interval <= 0 {
		t.Interval = DefaultInterval
	}
	if t.MinFree == 0 {
		t.MinFree = DefaultMinFree
	}
	if t.Spacing <= 0 {
		t.Spacing = DefaultSpacing
	}
	if t.trim == nil {
		t.trim = debug.FreeOSMemory
	}
	if t.samples == nil {
		t.samples = []metrics.Sample{{Name: metricFree}, {Name: metricAllocs}, {Name: metricObjects}, {Name: metricLive}}
		metrics.Read(t.samples)
		t.lastAllocs = t.samples[1].Value.Uint64()
	}
}

// Check reads the heap once and trims if it should; it reports whether
// it did.
func (t *Trimmer) Check(now time.Time) bool {
	t.init()
	metrics.Read(t.samples)
	free, allocs := t.samples[0].Value.Uint64(), t.samples[1].Value.Uint64()
	if objects, live := t.samples[2].Value.Uint64(), t.samples[3].Value.Uint64(); objects > live {
		free += objects - live // garbage (an upper bound: new live objects count too)
	}
	recent := allocs - t.lastAllocs
	t.lastAllocs = allocs
	busy := t.Busy != nil && t.Busy() // asked every time: a rate over the last interval
	if busy || free < t.MinFree || recent >= free/2 || now.Sub(t.lastTrim) < t.Spacing {
		return false
	}
	t.trim()
	t.lastTrim = now
	t.trims++
	return true
}
