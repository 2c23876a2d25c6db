package api

import "fmt"

// OpPods replaces what the agent knows of its node's pods beyond what
// the runtime says (labels, owning workload), for the events' pod
// objects. ocigate-kube sends it; protocol version 2 only.
const OpPods = "pods"

// MaxPods bounds one pod table: a node runs at most a few hundred pods.
const MaxPods = 10000

// PodTable is every pod of the agent's node, keyed by UID.
type PodTable struct {
	Pods []PodMeta `json:"pods"`
}

// PodMeta is one pod as the API server knows it.
type PodMeta struct {
	UID       string            `json:"uid"`
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Workload and WorkloadKind name the pod's owner as Tetragon does: a
	// ReplicaSet's pod is its Deployment's; a pod with no owner is its
	// own ("Pod").
	Workload     string `json:"workload,omitempty"`
	WorkloadKind string `json:"workload_kind,omitempty"`
}

// Validate checks a pod table's shape.
func (t *PodTable) Validate() error {
	if len(t.Pods) > MaxPods {
		return fmt.Errorf("pods request with %d pods: at most %d", len(t.Pods), MaxPods)
	}
	for i, p := range t.Pods {
		if p.UID == "" {
			return fmt.Errorf("pods[%d] (%s/%s) without uid", i, p.Namespace, p.Name)
		}
	}
	return nil
}
