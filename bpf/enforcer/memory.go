package enforcer

import (
	"fmt"

	"github.com/ocigate/ocigate/bpf"
)

// MapMemory is the kernel memory charged for each shared map (the
// "memlock" of /proc/PID/fdinfo: what the map uses now, for the maps
// allocated on use), by map name, and their sum.
func (e *Enforcer) MapMemory() (map[string]uint64, uint64, error) {
	out := map[string]uint64{}
	var total uint64
	for name, m := range bpf.MapsByName(&e.maps) {
		info, err := m.Info()
		if err != nil {
			return out, total, fmt.Errorf("info of map %s: %w", name, err)
		}
		n, _ := info.Memlock() // 0 for an empty map allocated on use
		out[name] = n
		total += n
	}
	return out, total, nil
}
