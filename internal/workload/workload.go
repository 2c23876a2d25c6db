// Package workload is the agent's record of each registered container
// (Workload) and the set of them it enforces on (Registry). The record
// is the agent's own: the API sends its own wire types (package api),
// converted from records in one place in the agent; package
// workloadstate saves records as they are, so their JSON tags are the
// saved-state format.
package workload

import (
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
)

// Workload is a registered container (or any process tree placed in a
// cgroup) and where it lives.
type Workload struct {
	ContainerID  string            `json:"container_id"`
	Runtime      string            `json:"runtime,omitempty"`
	Bundle       string            `json:"bundle,omitempty"`
	Pid          int               `json:"pid,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Image        string            `json:"image,omitempty"`         // image reference profiles match
	ImageSource  string            `json:"image_source,omitempty"`  // where Image came from: "containerd", "docker", "podman" or an annotation's key
	ImageDigests []string          `json:"image_digests,omitempty"` // digests of the image's content its runtime gives
	Name         string            `json:"name,omitempty"`          // the container's name (CRI annotation or the runtime's record)
	Pod          string            `json:"pod,omitempty"`           // the pod's name (CRI)
	PodNamespace string            `json:"pod_namespace,omitempty"`
	PodSource    string            `json:"pod_source,omitempty"` // where Pod and PodNamespace came from: "containerd" or an annotation's key
	// RuntimeAnnotation is the annotation the hook read Runtime from, ""
	// when its flag, the bundle or its parent process said.
	RuntimeAnnotation string `json:"runtime_annotation,omitempty"`
	// RequestedProfile is the profile the registering client's own
	// configuration asked for (run-job --profile).
	RequestedProfile string `json:"requested_profile,omitempty"`
	// Adopted: registered by the agent from the runtime's list of running
	// containers, not by the hook; processes it ran before were not seen.
	Adopted               bool      `json:"adopted,omitempty"`
	cgroupfilter.Identity           // cgroup and namespaces
	Profile               string    `json:"profile"`
	ProfileReason         string    `json:"profile_reason,omitempty"` // why this profile
	Mode                  string    `json:"mode"`
	RegisteredAt          time.Time `json:"registered_at"`
}
