// Package api is the agent's unix-socket protocol: length-prefixed JSON
// messages, the client the hook and the CLI use, and the server.
package api

import (
	"fmt"
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
)

// DefaultSocket is where the agent listens.
const DefaultSocket = "/run/ocigate/agentd.sock"

// Operations.
const (
	OpRegister   = "register"
	OpUnregister = "unregister"
	OpStatus     = "status"
)

// Request is one call to the agent.
type Request struct {
	Op         string          `json:"op"`
	Register   *Registration   `json:"register,omitempty"`
	Unregister *Unregistration `json:"unregister,omitempty"`
}

// Registration asks the agent to enforce on a container's cgroup.
type Registration struct {
	ContainerID string                `json:"container_id"`
	Runtime     string                `json:"runtime,omitempty"`
	Bundle      string                `json:"bundle,omitempty"`
	Pid         int                   `json:"pid"`
	Annotations map[string]string     `json:"annotations,omitempty"`
	Identity    cgroupfilter.Identity `json:"identity"`
}

// Unregistration asks the agent to forget a container.
type Unregistration struct {
	ContainerID string `json:"container_id"`
}

// Response is the agent's answer.
type Response struct {
	OK       bool                   `json:"ok"`
	Error    string                 `json:"error,omitempty"`
	Workload *cgroupfilter.Workload `json:"workload,omitempty"`
	Status   *Status                `json:"status,omitempty"`
}

// Backend says how one enforcement point is carried out.
type Backend struct {
	Point     string   `json:"point"`
	Backend   string   `json:"backend"`
	Mechanism string   `json:"mechanism"`
	Skipped   []string `json:"skipped,omitempty"` // better backends and why they were not used
}

// Status is the agent's state.
type Status struct {
	Node      string                   `json:"node"`
	StartedAt time.Time                `json:"started_at"`
	Backends  []Backend                `json:"backends"`
	Profiles  []string                 `json:"profiles"`
	Workloads []*cgroupfilter.Workload `json:"workloads"`
	Counters  map[string]uint64        `json:"counters"`
}

// Validate checks a request's shape before it is handled.
func (r *Request) Validate() error {
	switch r.Op {
	case OpRegister:
		if r.Register == nil {
			return fmt.Errorf("register request without \"register\" body")
		}
		return r.Register.Validate()
	case OpUnregister:
		if r.Unregister == nil || r.Unregister.ContainerID == "" {
			return fmt.Errorf("unregister request without container_id")
		}
	case OpStatus:
	case "":
		return fmt.Errorf("request has no \"op\"")
	default:
		return fmt.Errorf("unknown op %q", r.Op)
	}
	return nil
}

// Validate checks a registration's fields.
func (r *Registration) Validate() error {
	switch {
	case r.ContainerID == "":
		return fmt.Errorf("registration without container_id")
	case len(r.ContainerID) > 1024:
		return fmt.Errorf("registration container_id longer than 1024 bytes")
	case r.Identity.CgroupID == 0:
		return fmt.Errorf("registration of %q without cgroup_id", r.ContainerID)
	case r.Identity.CgroupPath == "" || r.Identity.CgroupPath[0] != '/':
		return fmt.Errorf("registration of %q: cgroup_path %q is not absolute", r.ContainerID, r.Identity.CgroupPath)
	case r.Pid < 0:
		return fmt.Errorf("registration of %q: negative pid %d", r.ContainerID, r.Pid)
	}
	return nil
}
