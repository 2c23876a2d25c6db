package agent

import (
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/workload"
)

// sandboxUIDAnnotation is the annotation containerd's CRI plugin sets on
// every container to its pod's UID: the key into the pod table.
const sandboxUIDAnnotation = "io.kubernetes.cri.sandbox-uid"

// podTable is what ocigate-kube said of the node's pods, by UID;
// replaced whole, never changed, so the event reader reads it without a
// lock.
type podTable struct {
	byUID map[string]api.PodMeta
}

// SetPods replaces the pod table (api.OpPods): the events of each pod's
// containers carry its labels and owning workload from now on.
func (a *Agent) SetPods(t *api.PodTable) {
	next := &podTable{byUID: make(map[string]api.PodMeta, len(t.Pods))}
	for _, p := range t.Pods {
		next.byUID[p.UID] = p
	}
	a.podMeta.Store(next)
}

// withMeta adds to a workload's pod object what the pod table says of
// its pod.
func withMeta(p *events.Pod, w *workload.Workload, t *podTable) *events.Pod {
	if t == nil {
		return p
	}
	m, ok := t.byUID[w.Annotations[sandboxUIDAnnotation]]
	if !ok {
		return p
	}
	p.PodLabels, p.Workload, p.WorkloadKind = m.Labels, m.Workload, m.WorkloadKind
	if p.Name == "" {
		p.Namespace, p.Name = m.Namespace, m.Name
	}
	return p
}
