package agent

import (
	"sync"
	"time"

	"github.com/ocigate/ocigate/internal/workload"
)

// The kernel's last records of a container can reach the agent after the
// container was unregistered (poststop, the periodic check, run-job's end):
// the reader polls the ring buffer every few milliseconds. Removed
// workloads are kept this long, at most this many, so such events still
// name their container.
const (
	recentGrace = 30 * time.Second
	recentMax   = 4096
)

// recentWorkloads are workloads removed lately, by cgroup ID.
type recentWorkloads struct {
	mu    sync.Mutex
	byID  map[uint64]recentWorkload
	order []uint64 // removal order, oldest first
}

type recentWorkload struct {
	w  *workload.Workload
	at time.Time
}

func (r *recentWorkloads) add(w *workload.Workload, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[uint64]recentWorkload{}
	}
	r.expire(now)
	if len(r.order) >= recentMax {
		delete(r.byID, r.order[0])
		r.order = r.order[1:]
	}
	r.byID[w.CgroupID] = recentWorkload{w: w, at: now}
	r.order = append(r.order, w.CgroupID)
}

func (r *recentWorkloads) get(cgroupID uint64, now time.Time) (*workload.Workload, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byID[cgroupID]
	if !ok || now.Sub(e.at) > recentGrace {
		return nil, false
	}
	return e.w, true
}

// expire drops what is past the grace period; r.mu is held.
func (r *recentWorkloads) expire(now time.Time) {
	n := 0
	for n < len(r.order) {
		e, ok := r.byID[r.order[n]]
		if ok && now.Sub(e.at) <= recentGrace {
			break
		}
		if ok {
			delete(r.byID, r.order[n])
		}
		n++
	}
	r.order = r.order[n:]
}

// eventWorkload is the workload an event of cgroupID belongs to: a
// registered one, or one removed within recentGrace.
func (a *Agent) eventWorkload(cgroupID uint64) (*workload.Workload, bool) {
	if w, ok := a.reg.ByCgroup(cgroupID); ok {
		return w, true
	}
	return a.recent.get(cgroupID, time.Now())
}
