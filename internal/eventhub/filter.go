package eventhub

import (
	"fmt"
	"strings"

	"github.com/ocigate/ocigate/internal/events"
)

// Filter selects events; the zero Filter selects all. Within a list any
// entry matches; across fields all must match.
type Filter struct {
	// Container matches a container ID by prefix, or a container name
	// exactly.
	Container string
	Types     []string // event types (events.Types)
	Policies  []string // policy names
}

// Validate refuses event types that do not exist.
func (f Filter) Validate() error {
	for _, t := range f.Types {
		if !events.KnownType(t) {
			return fmt.Errorf("event type %q: want one of %s", t, strings.Join(events.Types, ", "))
		}
	}
	return nil
}

// Match reports whether ev passes the filter.
func (f Filter) Match(ev *events.Event) bool {
	if f.Container != "" && !matchContainer(f.Container, ev) {
		return false
	}
	if len(f.Types) > 0 && !contains(f.Types, ev.Type()) {
		return false
	}
	if len(f.Policies) > 0 && !contains(f.Policies, ev.Policy()) {
		return false
	}
	return true
}

func matchContainer(want string, ev *events.Event) bool {
	if id := ev.ContainerID(); id != "" && strings.HasPrefix(id, want) {
		return true
	}
	if p := ev.Process(); p != nil && p.Pod != nil && p.Pod.Container.Name == want {
		return true
	}
	c := ev.OcigateClaim
	return c != nil && c.Pod != nil && c.Pod.Container.Name == want
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// String describes the filter for status output.
func (f Filter) String() string {
	var parts []string
	if f.Container != "" {
		parts = append(parts, "container="+f.Container)
	}
	if len(f.Types) > 0 {
		parts = append(parts, "type="+strings.Join(f.Types, ","))
	}
	if len(f.Policies) > 0 {
		parts = append(parts, "policy="+strings.Join(f.Policies, ","))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}
