package wire

import (
	"errors"
	"maps"
	"strconv"

	"github.com/ocigate/ocigate/cgroupfilter"
)

// The types below are the protocol's own: cgroupfilter's Identity and
// the agent's record are converted to and from them field by field, so
// that a field added there is not sent until it is added here. Their
// JSON is what agents and hooks of earlier versions send and expect;
// package api's wire_test.go pins it, and the agent decodes them with
// encoding/json by their tags.

// Request is a request of the hook: a registration or an
// unregistration. It is the first fields of package api's Request, the
// message the agent decodes.
type Request struct {
	// Protocol is the message's protocol version; absent: 1.
	Protocol   int             `json:"protocol,omitempty"`
	Op         string          `json:"op"`
	Register   *Registration   `json:"register,omitempty"`
	Unregister *Unregistration `json:"unregister,omitempty"`
}

// Registration asks the agent to enforce on a container's cgroup.
type Registration struct {
	ContainerID string            `json:"container_id"`
	Runtime     string            `json:"runtime,omitempty"`
	Bundle      string            `json:"bundle,omitempty"`
	Pid         int               `json:"pid"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Identity    Identity          `json:"identity"`
	// RuntimeAnnotation is the annotation the hook read Runtime from (its
	// --runtime flag and parent process are not annotations): a claim of
	// the container's spec, not the hook's configuration.
	RuntimeAnnotation string `json:"runtime_annotation,omitempty"`
	// Profile is a profile the client's own configuration names (run-job
	// --profile): the operator's choice. The hook never sets it.
	Profile string `json:"profile,omitempty"`
}

// Unregistration asks the agent to forget a container.
type Unregistration struct {
	ContainerID string `json:"container_id"`
}

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

// Validate checks a registration's fields.
func (g *Registration) Validate() error {
	switch {
	case g.ContainerID == "":
		return errors.New("registration without container_id")
	case len(g.ContainerID) > 1024:
		return errors.New("registration container_id longer than 1024 bytes")
	case g.Identity.CgroupID == 0:
		return errors.New("registration of " + strconv.Quote(g.ContainerID) + " without cgroup_id")
	case g.Identity.CgroupPath == "" || g.Identity.CgroupPath[0] != '/':
		return errors.New("registration of " + strconv.Quote(g.ContainerID) + ": cgroup_path " +
			strconv.Quote(g.Identity.CgroupPath) + " is not absolute")
	case g.Pid < 0:
		return errors.New("registration of " + strconv.Quote(g.ContainerID) + ": negative pid " + strconv.Itoa(g.Pid))
	}
	return nil
}

// Version returns the protocol version of a request: 1 when it carries
// none.
func (r *Request) Version() int { return VersionOf(r.Protocol) }

// As returns the request as version v has it (v spoken here): its
// "protocol" field set to v, except for version 1 which has none, and
// its registration as Registration.As has it. The request itself is
// not changed.
func (r *Request) As(v int) *Request {
	out := *r
	out.Protocol = v
	if v <= 1 {
		out.Protocol = 0
		out.Register = r.Register.As(v)
	}
	return &out
}

// As returns the registration as version v has it: g itself from
// version 2 on; in version 1 without the runtime annotation's name,
// which a version-1 agent does not weigh, and with the operator's
// profile as the profile annotation (run-job's way then). g is not
// changed; a nil g stays nil.
func (g *Registration) As(v int) *Registration {
	if g == nil || v > 1 {
		return g
	}
	out := *g
	out.RuntimeAnnotation = ""
	if out.Profile != "" {
		out.Annotations = maps.Clone(out.Annotations)
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[v1ProfileAnnotation] = out.Profile
		out.Profile = ""
	}
	return &out
}

// v1ProfileAnnotation is the annotation through which a version-1
// agent takes a registration's profile.
const v1ProfileAnnotation = "ocigate.io/profile"
