package enforcer

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/cilium/ebpf"
)

// ProgramStat is the kernel's run count and time of one attached program
// (counted while bpf_stats is enabled: EnableStats).
type ProgramStat struct {
	Mechanism string        `json:"mechanism"`
	RunCount  uint64        `json:"run_count"`
	RunTime   time.Duration `json:"run_time"`
}

// EnableStats turns on the kernel's per-program run time accounting until
// the returned closer is closed.
func EnableStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(0) // BPF_STATS_RUN_TIME
	if err != nil {
		return nil, fmt.Errorf("enable bpf_stats: %w", err)
	}
	return c, nil
}

// ProgramStats reads the run statistics of every attached program, sorted
// by mechanism; programs attached as failed candidates, and those of
// detached on-demand points, are not included.
func (e *Enforcer) ProgramStats() ([]ProgramStat, error) {
	var out []ProgramStat
	for mech, p := range e.named {
		if !e.attached(p) {
			continue
		}
		st, err := p.Stats()
		if err != nil {
			return nil, fmt.Errorf("stats of %s: %w", mech, err)
		}
		out = append(out, ProgramStat{Mechanism: mech, RunCount: st.RunCount, RunTime: st.Runtime})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mechanism < out[j].Mechanism })
	return out, nil
}

func (e *Enforcer) attached(p *ebpf.Program) bool {
	for _, q := range e.progs {
		if q == p {
			return true
		}
	}
	return e.demand.attachedProgram(p)
}
