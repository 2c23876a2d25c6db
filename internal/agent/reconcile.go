package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/internal/workload"
)

// reconcileState remembers, between checks, the workloads whose cgroup
// was found empty: one empty check is not enough to drop a workload.
type reconcileState struct {
	mu    sync.Mutex
	empty map[string]uint64 // container ID -> cgroup ID found empty last time
}

// gone says why a workload's container no longer exists, or "".
// emptyOnly is set when the only sign is an empty cgroup.
func (a *Agent) gone(w *workload.Workload) (why string, emptyOnly bool) {
	id, err := a.resolver.CgroupID(w.CgroupPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "its cgroup was removed", false
	case err != nil:
		a.log.Warn("reconcile: cgroup unreadable; workload kept", zap.String("container", w.ContainerID), zap.Error(err))
		return "", false
	case id != w.CgroupID:
		return fmt.Sprintf("its cgroup path is another cgroup now (id %d)", id), false
	}
	populated, err := a.resolver.Populated(w.CgroupPath)
	if err != nil {
		// No cgroup.events (not cgroup v2, or a test's fake tree):
		// emptiness is unknown, so the workload stays.
		return "", false
	}
	if !populated {
		return "no process is left in its cgroup", true
	}
	return "", false
}

// Reconcile drops, once, every workload whose container is gone without
// being unregistered (the runtime crashed before poststop, the agent was
// down when it ran): its cgroup directory was removed or is another
// cgroup now, or no process has been left in it on two checks in a row.
// Map entries go exactly as Unregister removes them. It returns the
// container IDs dropped.
func (a *Agent) Reconcile() []string {
	a.recon.mu.Lock()
	defer a.recon.mu.Unlock()
	if a.recon.empty == nil {
		a.recon.empty = map[string]uint64{}
	}
	var cands []*workload.Workload
	emptyNow := map[string]uint64{}
	// The file system checks run without a.mu: registrations go on.
	for _, w := range a.reg.List() {
		why, emptyOnly := a.gone(w)
		if why == "" {
			continue
		}
		if emptyOnly {
			emptyNow[w.ContainerID] = w.CgroupID
			if a.recon.empty[w.ContainerID] != w.CgroupID {
				continue // empty for the first time: look again next check
			}
		}
		cands = append(cands, w)
	}
	a.recon.empty = emptyNow
	var dropped []string
	for _, w := range cands {
		if a.dropIfGone(w, false) {
			dropped = append(dropped, w.ContainerID)
			delete(a.recon.empty, w.ContainerID)
		}
	}
	return dropped
}

// dropIfGone removes w under a.mu, after checking again that it is still
// the registered entry and its container still gone; removedOnly (the
// cgroup watch) drops it only when its cgroup was removed, not when it
// is merely empty.
func (a *Agent) dropIfGone(w *workload.Workload, removedOnly bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur, ok := a.reg.Get(w.ContainerID)
	if !ok || cur.CgroupID != w.CgroupID {
		return false // unregistered or registered anew meanwhile
	}
	// Still gone? (An empty cgroup may have been removed since: the
	// stronger reason is the one logged.)
	why, emptyOnly := a.gone(cur)
	if why == "" || (removedOnly && emptyOnly) {
		return false
	}
	if err := a.removeLocked(cur); err != nil {
		a.log.Error("reconcile: stale workload not dropped", zap.String("container", cur.ContainerID), zap.Error(err))
		return false
	}
	a.stats.Reconciled.Add(1)
	a.log.Info("workload dropped: its container is gone and was not unregistered", zap.String("container", cur.ContainerID),
		zap.String("why", why), zap.Bool("seen_by_cgroup_watch", removedOnly), zap.String("cgroup", cur.CgroupPath), zap.Uint64("cgroup_id", cur.CgroupID),
		zap.Duration("registered_for", time.Since(cur.RegisteredAt).Round(time.Millisecond)))
	return true
}

// RunReconcile calls Reconcile every period until ctx ends.
func (a *Agent) RunReconcile(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.Reconcile()
		}
	}
}
