package agent

import (
	"go.uber.org/zap"

	"github.com/ocigate/ocigate/internal/workload"
	"github.com/ocigate/ocigate/runtime/containerd"
)

// ContainerGone is a runtime's word that a container's init exited or
// the container was deleted (containerd's /tasks/exit, /containers/delete).
type ContainerGone struct {
	Runtime     string // "containerd"
	Namespace   string // the runtime's namespace of the container
	ContainerID string
	Pid         int    // the exited init's pid; 0 when the event has none
	Topic       string // for the log
}

// DropGone unregisters the workload a runtime event says is gone, as
// Unregister does, unless the workload is not that runtime's container or
// is a newer one with the same ID: an event with a pid must name the
// workload's init; one without needs the init to have left the cgroup.
func (a *Agent) DropGone(ev ContainerGone) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	w, ok := a.reg.Get(ev.ContainerID)
	if !ok || !belongsTo(w, ev) {
		return false
	}
	if ev.Pid != 0 {
		if w.Pid != ev.Pid {
			return false
		}
	} else if p, err := a.resolver.CgroupPath(w.Pid); err == nil && p == w.CgroupPath {
		return false // its init still runs there
	}
	if err := a.removeLocked(w); err != nil {
		a.log.Error("runtime event: workload not unregistered", zap.String("container", w.ContainerID), zap.Error(err))
		return false
	}
	a.stats.RuntimeEventDrops.Add(1)
	a.log.Info("workload unregistered on the runtime's event", zap.String("container", w.ContainerID),
		zap.String("runtime", ev.Runtime), zap.String("namespace", ev.Namespace), zap.String("event", ev.Topic),
		zap.Uint64("cgroup_id", w.CgroupID))
	return true
}

func belongsTo(w *workload.Workload, ev ContainerGone) bool {
	if ns, _, ok := containerd.BundleRef(w.Bundle); ok {
		return ev.Runtime == "containerd" && ns == ev.Namespace
	}
	// Adopted from containerd's API: no bundle path known.
	return w.Bundle == "" && w.Runtime == ev.Runtime
}
