// Package api is the agent's unix-socket protocol: length-prefixed JSON
// messages and the context-bound client the CLI uses. The hook's part
// (registration messages, framing, the verdict, a deadline-bound
// client) is package wire's, whose types and code this package uses as
// its own, so that the hook links neither fmt nor encoding/json.
package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ocigate/ocigate/internal/api/wire"
	"github.com/ocigate/ocigate/internal/events"
)

// DefaultSocket is where the agent listens.
const DefaultSocket = wire.DefaultSocket

// Operations.
const (
	OpRegister   = wire.OpRegister
	OpUnregister = wire.OpUnregister
	OpStatus     = "status"
	// OpSubscribe streams events: the answer is a series of Responses
	// carrying EventFrames, the last with End set.
	OpSubscribe = "subscribe"
)

// Request is one call to the agent.
type Request struct {
	// Protocol is the message's protocol version; absent: 1
	// (version.go).
	Protocol   int             `json:"protocol,omitempty"`
	Op         string          `json:"op"`
	Register   *Registration   `json:"register,omitempty"`
	Unregister *Unregistration `json:"unregister,omitempty"`
	Subscribe  *Subscription   `json:"subscribe,omitempty"`
	Status     *StatusOptions  `json:"status,omitempty"`
	Pods       *PodTable       `json:"pods,omitempty"` // OpPods (version 2)
}

// StatusOptions shape a status answer.
type StatusOptions struct {
	// Summary: counters and backends only, no workload list.
	Summary bool `json:"summary,omitempty"`
}

// Registration asks the agent to enforce on a container's cgroup
// (wire.Registration: the hook's message).
type Registration = wire.Registration

// Unregistration asks the agent to forget a container
// (wire.Unregistration).
type Unregistration = wire.Unregistration

// Response is the agent's answer.
type Response struct {
	// Protocol is the message's protocol version; absent: 1
	// (version.go).
	Protocol int         `json:"protocol,omitempty"`
	OK       bool        `json:"ok"`
	Error    string      `json:"error,omitempty"`
	Workload *Workload   `json:"workload,omitempty"`
	Status   *Status     `json:"status,omitempty"`
	Events   *EventFrame `json:"events,omitempty"`
	// FailurePolicy: on a refused registration, the failurePolicy
	// ("open" or "closed") of the profile the agent chose for the
	// container, when it got that far; the hook honours it.
	FailurePolicy string `json:"failure_policy,omitempty"`
}

// Failure policies.
const (
	FailOpen   = wire.FailOpen
	FailClosed = wire.FailClosed
)

// PolicyError is a refused registration whose profile is known: the
// server sends its FailurePolicy along with the error.
type PolicyError struct {
	Err           error
	FailurePolicy string
}

func (e *PolicyError) Error() string { return e.Err.Error() }
func (e *PolicyError) Unwrap() error { return e.Err }

// Subscription asks for events: first the most recent ones the agent
// keeps, then, with Follow, every new one until the client hangs up.
type Subscription struct {
	Follow    bool     `json:"follow,omitempty"`
	Tail      int      `json:"tail"`                // recent events first; -1: all kept
	Container string   `json:"container,omitempty"` // container ID prefix or name
	Types     []string `json:"types,omitempty"`     // process_kprobe, process_exec, process_exit
	Policies  []string `json:"policies,omitempty"`
}

// EventFrame is one message of an event stream.
type EventFrame struct {
	// Events are JSON lines as the events file has them, without the
	// newline.
	Events []json.RawMessage `json:"events,omitempty"`
	// Dropped counts this subscriber's events lost so far because it
	// read too slowly.
	Dropped uint64 `json:"dropped"`
	// Live: the recent events are all sent; what follows is new.
	Live bool `json:"live,omitempty"`
	// End: the stream ends here (recent events only, or the agent stops).
	End bool `json:"end,omitempty"`
}

// Backend says how one enforcement point is carried out.
type Backend struct {
	Point     string   `json:"point"`
	Backend   string   `json:"backend"`
	Mechanism string   `json:"mechanism"`
	Skipped   []string `json:"skipped,omitempty"` // better backends and why they were not used
	// Error: the point does not enforce on this kernel, and why (no
	// backend could attach). Registrations whose profile needs it are
	// refused. Empty when it enforces; older agents never set it.
	Error string `json:"error,omitempty"`
	// Unneeded: the point does not enforce (Error) and no loaded profile
	// needs it, so nothing is refused for it (a report-only point an
	// older kernel lacks). Older agents never set it.
	Unneeded bool `json:"unneeded,omitempty"`
	// Detached: a per-packet point (receive, xmit, drop) whose programs
	// are loaded but not attached now, because no loaded profile needs
	// it; it attaches before a profile that needs it is loaded. Older
	// agents never set it.
	Detached bool `json:"detached,omitempty"`
}

// Enforcement sums up what the agent's kernel enforces from the points
// that do not: "complete", or "degraded: N points unavailable (a, b)".
func Enforcement(unavailable []string) string {
	if len(unavailable) == 0 {
		return "complete"
	}
	names := slices.Sorted(slices.Values(unavailable))
	noun := "points"
	if len(names) == 1 {
		noun = "point"
	}
	return fmt.Sprintf("degraded: %d %s unavailable (%s)", len(names), noun, strings.Join(names, ", "))
}

// Unavailable names the points that do not enforce on the agent's
// kernel (an agent before this field never reports any).
func (st *Status) Unavailable() []string {
	var out []string
	for _, b := range st.Backends {
		if b.Error != "" {
			out = append(out, b.Point)
		}
	}
	return out
}

// Degraded names the points that do not enforce and that a loaded
// profile needs: the agent refuses registrations for them. An agent
// before Unneeded counts every unavailable point.
func (st *Status) Degraded() []string {
	var out []string
	for _, b := range st.Backends {
		if b.Error != "" && !b.Unneeded {
			out = append(out, b.Point)
		}
	}
	return out
}

// Status is the agent's state.
type Status struct {
	Node      string      `json:"node"`
	StartedAt time.Time   `json:"started_at"`
	Backends  []Backend   `json:"backends"`
	Profiles  []string    `json:"profiles"`
	Workloads []*Workload `json:"workloads"`
	// WorkloadsOmitted: registered workloads left out of Workloads (a
	// summary, or more than the agent lists in one answer).
	WorkloadsOmitted int               `json:"workloads_omitted,omitempty"`
	Counters         map[string]uint64 `json:"counters"`
	// Subscribers are the event streams being followed.
	Subscribers []Subscriber `json:"subscribers,omitempty"`
}

// Subscriber describes one followed event stream.
type Subscriber struct {
	ID      uint64    `json:"id"`
	Filter  string    `json:"filter"`
	Since   time.Time `json:"since"`
	Queued  int       `json:"queued"`
	Sent    uint64    `json:"sent"`
	Dropped uint64    `json:"dropped"`
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
	case OpPods:
		if r.Pods == nil {
			return fmt.Errorf("pods request without \"pods\" body")
		}
		return r.Pods.Validate()
	case OpSubscribe:
		if r.Subscribe == nil {
			return fmt.Errorf("subscribe request without \"subscribe\" body")
		}
		return r.Subscribe.Validate()
	case "":
		return fmt.Errorf("request has no \"op\"")
	default:
		return fmt.Errorf("unknown op %q", r.Op)
	}
	return nil
}

// Validate checks a subscription's fields.
func (s *Subscription) Validate() error {
	if s.Tail < -1 {
		return fmt.Errorf("subscription tail %d: want -1 (all kept) or more", s.Tail)
	}
	if len(s.Container) > 1024 {
		return fmt.Errorf("subscription container longer than 1024 bytes")
	}
	for _, t := range s.Types {
		if !events.KnownType(t) {
			return fmt.Errorf("subscription event type %q: want one of %s", t, strings.Join(events.Types, ", "))
		}
	}
	return nil
}
