package api

import (
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api/wire"
)

// The wire types below are the protocol's own: the agent's record
// (package workload) and cgroupfilter's Identity are converted to and
// from them field by field, so that a field added there is not sent
// until it is added here. Their JSON is what agents and hooks of earlier
// versions send and expect; wire_test.go pins it. Those of the hook's
// messages are package wire's.

// NamespaceIDs are the inode numbers of a process's namespaces
// (wire.NamespaceIDs).
type NamespaceIDs = wire.NamespaceIDs

// Identity is where a container's processes live (wire.Identity).
type Identity = wire.Identity

// IdentityOf returns the wire form of a resolved identity
// (wire.IdentityOf).
func IdentityOf(id cgroupfilter.Identity) Identity { return wire.IdentityOf(id) }

// Workload is a registered container as the agent reports it: in a
// registration's answer and in a status's list.
type Workload struct {
	ContainerID  string            `json:"container_id"`
	Runtime      string            `json:"runtime,omitempty"`
	Bundle       string            `json:"bundle,omitempty"`
	Pid          int               `json:"pid,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Image        string            `json:"image,omitempty"`        // image reference profiles match
	ImageSource  string            `json:"image_source,omitempty"` // where Image came from: an annotation's key, "containerd", "podman"
	Name         string            `json:"name,omitempty"`         // the container's name
	Pod          string            `json:"pod,omitempty"`          // the pod's name (CRI)
	PodNamespace string            `json:"pod_namespace,omitempty"`
	// Adopted: registered by the agent from the runtime's list of running
	// containers, not by the hook.
	Adopted bool `json:"adopted,omitempty"`
	// Identity's fields are inline, as in earlier versions' answers.
	Identity
	Profile       string    `json:"profile"`
	ProfileReason string    `json:"profile_reason,omitempty"` // why this profile
	Mode          string    `json:"mode"`
	RegisteredAt  time.Time `json:"registered_at"`
}
