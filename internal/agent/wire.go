package agent

import (
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/workload"
)

// wireWorkload returns the API's form of a workload record; it is the
// one place a record becomes what the API sends, so a field added to
// the record reaches the wire only when it is added here. The answer
// shares the record's annotations, which records never change.
func wireWorkload(w *workload.Workload) *api.Workload {
	return &api.Workload{
		ContainerID: w.ContainerID, Runtime: w.Runtime, Bundle: w.Bundle, Pid: w.Pid, Annotations: w.Annotations,
		Image: w.Image, ImageSource: w.ImageSource, Name: w.Name, Pod: w.Pod, PodNamespace: w.PodNamespace,
		Adopted: w.Adopted, Identity: api.IdentityOf(w.Identity),
		Profile: w.Profile, ProfileReason: w.ProfileReason, Mode: w.Mode, RegisteredAt: w.RegisteredAt,
	}
}

// wireWorkloads returns the API's form of records, in their order.
func wireWorkloads(ws []*workload.Workload) []*api.Workload {
	out := make([]*api.Workload, len(ws))
	for i, w := range ws {
		out[i] = wireWorkload(w)
	}
	return out
}
