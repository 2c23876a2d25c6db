package agent

import (
	"reflect"
	"testing"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/workload"
)

// The pod table's labels and workload reach the pod object of a
// container whose sandbox UID it lists, and a new table replaces what
// was cached; a container of an unknown pod keeps the runtime's names.
func TestPodTableInPodObjects(t *testing.T) {
	a := &Agent{}
	w := &workload.Workload{ContainerID: "c1", Pod: "web-1", PodNamespace: "shop",
		Annotations: map[string]string{sandboxUIDAnnotation: "u1"}}
	other := &workload.Workload{ContainerID: "c2", Pod: "db-0", PodNamespace: "shop",
		Annotations: map[string]string{sandboxUIDAnnotation: "u2"}}
	if p := a.pods.of(w, a.podMeta.Load()); p.PodLabels != nil || p.Workload != "" {
		t.Fatalf("no table yet, pod %+v", p)
	}
	a.SetPods(&api.PodTable{Pods: []api.PodMeta{{UID: "u1", Namespace: "shop", Name: "web-1",
		Labels: map[string]string{"app": "web"}, Workload: "web", WorkloadKind: "Deployment"}}})
	p := a.pods.of(w, a.podMeta.Load())
	if !reflect.DeepEqual(p.PodLabels, map[string]string{"app": "web"}) || p.Workload != "web" || p.WorkloadKind != "Deployment" {
		t.Errorf("pod %+v", p)
	}
	if q := a.pods.of(other, a.podMeta.Load()); q.PodLabels != nil || q.Name != "db-0" {
		t.Errorf("pod of a UID not in the table: %+v", q)
	}
	a.SetPods(&api.PodTable{Pods: []api.PodMeta{{UID: "u1", Namespace: "shop", Name: "web-1",
		Labels: map[string]string{"app": "web", "tier": "front"}}}})
	if p := a.pods.of(w, a.podMeta.Load()); len(p.PodLabels) != 2 || p.Workload != "" {
		t.Errorf("after a new table, pod %+v", p)
	}
}
