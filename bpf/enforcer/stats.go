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
	Program   string        `json:"program"` // its name in the object (a pinned link's name)
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

// namedProgram is an attached program and the mechanism it is reported
// as: several programs may share one (sched_process_exec runs exec
// tracking and the relay check), so stats are kept by program.
type namedProgram struct {
	mechanism string
	prog      *ebpf.Program
}

// ProgramStats reads the run statistics of every attached program, sorted
// by mechanism and program; programs attached as failed candidates, and
// those of detached on-demand points, are not included.
func (e *Enforcer) ProgramStats() ([]ProgramStat, error) {
	var out []ProgramStat
	for name, np := range e.named {
		if !e.attached(np.prog) {
			continue
		}
		st, err := np.prog.Stats()
		if err != nil {
			return nil, fmt.Errorf("stats of %s (%s): %w", name, np.mechanism, err)
		}
		out = append(out, ProgramStat{Program: name, Mechanism: np.mechanism, RunCount: st.RunCount, RunTime: st.Runtime})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Mechanism != out[j].Mechanism {
			return out[i].Mechanism < out[j].Mechanism
		}
		return out[i].Program < out[j].Program
	})
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
