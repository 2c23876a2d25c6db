package agent

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
)

// MapCounter is an enforcer that can count its workloads map and report
// the memory of its maps (*enforcer.Enforcer does).
type MapCounter interface {
	WorkloadCgroups() ([]uint64, error)
	MapMemory() (map[string]uint64, uint64, error)
}

// selfCounters are what leak checks and the benchmark read from status:
// the agent's goroutines, open descriptors and resident memory, the
// entries of the kernel's workloads map, the memory of the BPF maps and
// the workload records on disk.
func (a *Agent) selfCounters(c map[string]uint64) {
	c["agent_goroutines"] = uint64(runtime.NumGoroutine())
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		c["agent_open_fds"] = uint64(len(fds) - 1) // minus the one ReadDir used
	}
	if rss, ok := vmRSS(); ok {
		c["agent_rss_bytes"] = rss
	}
	if mc, ok := a.enf.(MapCounter); ok {
		if ids, err := mc.WorkloadCgroups(); err == nil {
			c["workloads_map_entries"] = uint64(len(ids))
		}
		if _, total, err := mc.MapMemory(); err == nil {
			c["bpf_maps_bytes"] = total
		}
	}
	if a.state != nil {
		if n, err := a.state.Count(); err == nil {
			c["workload_records"] = uint64(n)
		}
	}
	c["workloads_registered"] = uint64(a.reg.Len())
	a.mu.Lock()
	c["profiles_retained"] = uint64(len(a.retained))
	a.mu.Unlock()
}

// vmRSS is the agent's resident set size (VmRSS of /proc/self/status).
func vmRSS() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(v) // "12345 kB"
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, false
		}
		n, err := strconv.ParseUint(string(f[0]), 10, 64)
		return n << 10, err == nil
	}
	return 0, false
}
