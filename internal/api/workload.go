package api

import (
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
)

// The wire types below are the protocol's own: the agent's record
// (package workload) and cgroupfilter's Identity are converted to and
// from them field by field, so that a field added there is not sent
// until it is added here. Their JSON is what agents and hooks of earlier
// versions send and expect; wire_test.go pins it.

// NamespaceIDs are the inode numbers of a process's namespaces.
type NamespaceIDs struct {
	Mnt    uint64 `json:"mnt"`
	Pid    uint64 `json:"pid"`
	Net    uint64 `json:"net"`
	Uts    uint64 `json:"uts"`
	Ipc    uint64 `json:"ipc"`
	Cgroup uint64 `json:"cgroup"`
	User   uint64 `json:"user"`
	Time   uint64 `json:"time"` // 0 when the kernel has no time namespaces
}

// Identity is where a container's processes live: its cgroup v2 (ID and
// path relative to the v2 mount) and its init's namespaces.
type Identity struct {
	CgroupID   uint64       `json:"cgroup_id"`
	CgroupPath string       `json:"cgroup_path"`
	Namespaces NamespaceIDs `json:"namespaces"`
}

// IdentityOf returns the wire form of a resolved identity.
func IdentityOf(id cgroupfilter.Identity) Identity {
	ns := id.Namespaces
	return Identity{CgroupID: id.CgroupID, CgroupPath: id.CgroupPath, Namespaces: NamespaceIDs{
		Mnt: ns.Mnt, Pid: ns.Pid, Net: ns.Net, Uts: ns.Uts, Ipc: ns.Ipc, Cgroup: ns.Cgroup, User: ns.User, Time: ns.Time,
	}}
}

// CgroupIdentity returns id as cgroupfilter's Identity, the form the
// agent verifies and records.
func (id Identity) CgroupIdentity() cgroupfilter.Identity {
	ns := id.Namespaces
	return cgroupfilter.Identity{CgroupID: id.CgroupID, CgroupPath: id.CgroupPath, Namespaces: cgroupfilter.NamespaceIDs{
		Mnt: ns.Mnt, Pid: ns.Pid, Net: ns.Net, Uts: ns.Uts, Ipc: ns.Ipc, Cgroup: ns.Cgroup, User: ns.User, Time: ns.Time,
	}}
}

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
