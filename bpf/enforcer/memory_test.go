package enforcer

import (
	"testing"

	"github.com/ocigate/ocigate/bpf"
)

// Every shared map reports its memory; port_sets alone is 511 bitmaps of
// 8 KiB.
func TestMapMemory(t *testing.T) {
	e := mapsOnlyEnforcer(t)
	per, total, err := e.MapMemory()
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, n := range per {
		sum += n
	}
	if len(per) != len(bpf.MapsByName(&e.maps)) || sum != total {
		t.Fatalf("per map %v, total %d", per, total)
	}
	if per["port_sets"] < bpf.MaxPortSets*8192 || total <= per["port_sets"] {
		t.Fatalf("port_sets %d bytes, total %d", per["port_sets"], total)
	}
	t.Logf("maps: %d KiB in all; %v", total>>10, per)
}
