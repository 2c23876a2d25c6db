package memtrim

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

var sink [][]byte

// burst allocates and drops about n bytes, then collects: the heap's
// pages stay with the runtime, free.
func burst(n int) {
	for i := 0; i < n>>16; i++ {
		sink = append(sink, make([]byte, 64<<10))
	}
	sink = nil
	runtime.GC()
}

func heapFree() uint64 {
	s := []metrics.Sample{{Name: metricFree}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// After a burst, the free heap goes back to the system, once; while the
// agent keeps allocating as much as is free, it does not.
func TestTrimAfterBurst(t *testing.T) {
	burst(64 << 20)
	tr := &Trimmer{MinFree: 8 << 20}
	tr.init() // the burst is before its first reading
	before := heapFree()
	if before < 16<<20 {
		t.Skipf("only %d bytes free after the burst: the runtime returned them itself", before)
	}
	if !tr.Check(time.Now()) {
		t.Fatalf("no trim with %d bytes free and nothing allocated", before)
	}
	if after := heapFree(); after > before/4 {
		t.Fatalf("free heap %d after the trim, %d before", after, before)
	}
	burst(64 << 20)
	if tr.Check(time.Now().Add(time.Second)) {
		t.Fatal("trimmed again within Spacing")
	}
}

func TestNoTrimWhileAllocating(t *testing.T) {
	trims := 0
	tr := &Trimmer{MinFree: 1, trim: func() { trims++ }}
	tr.init()
	now := time.Now()
	burst(32 << 20) // allocated since the last reading: more than is free
	if tr.Check(now) || trims != 0 {
		t.Fatal("trimmed while the heap was in use")
	}
	if !tr.Check(now.Add(time.Second)) || trims != 1 {
		t.Fatal("no trim once the allocations stopped")
	}
	if tr.Check(now.Add(2*time.Second)) || trims != 1 {
		t.Fatal("trimmed twice within Spacing")
	}
	if !tr.Check(now.Add(12*time.Second)) || trims != 2 {
		t.Fatal("no trim after Spacing")
	}
}

// A burst that ends below the collector's goal leaves garbage, not
// free pages: it is trimmed once the allocations stop all the same.
func TestTrimUncollectedGarbage(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection but the trim's
	runtime.GC()
	trims := 0
	tr := &Trimmer{MinFree: 8 << 20, trim: func() { trims++ }}
	tr.init()
	now := time.Now()
	for i := 0; i < 32<<20>>16; i++ {
		sink = append(sink, make([]byte, 64<<10))
	}
	sink = nil // garbage, not collected
	if tr.Check(now) || trims != 0 {
		t.Fatal("trimmed while allocating")
	}
	if !tr.Check(now.Add(time.Second)) || trims != 1 {
		t.Fatalf("no trim with 32 MiB of garbage once the allocations stopped (free heap %d)", heapFree())
	}
}

// While Busy says work is flowing, nothing is trimmed however much is
// free; the first quiet interval trims.
func TestNoTrimWhileBusy(t *testing.T) {
	trims, busy := 0, true
	tr := &Trimmer{MinFree: 1, trim: func() { trims++ }, Busy: func() bool { return busy }}
	tr.init()
	burst(32 << 20)
	now := time.Now()
	tr.Check(now) // the burst's allocations are behind this reading
	for i := 1; i <= 5; i++ {
		if tr.Check(now.Add(time.Duration(i)*10*time.Second)) || trims != 0 {
			t.Fatal("trimmed while busy")
		}
	}
	busy = false
	if !tr.Check(now.Add(time.Minute)) || trims != 1 {
		t.Fatal("no trim once quiet")
	}
}
