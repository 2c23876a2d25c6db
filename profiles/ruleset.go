// Package profiles turns workload profiles into a kernel-neutral rule set:
// ordered selectors per enforcement point. The bpf package writes a rule
// set into its maps; nothing here knows about BPF.
package profiles

import (
	"fmt"
	"net/netip"
)

// Point is an enforcement point: an operation a selector can decide on.
type Point int

// The enforcement points of DESIGN.md.
const (
	PointConnect Point = iota
	PointSendmsg
	PointBind
	PointSockCreate
	PointExec
	PointListen
	NumPoints
)

var pointNames = [NumPoints]string{"connect", "sendmsg", "bind", "sock_create", "exec", "listen"}

func (p Point) String() string {
	if p < 0 || p >= NumPoints {
		return fmt.Sprintf("point(%d)", int(p))
	}
	return pointNames[p]
}

// Action is what a matching selector does.
type Action int

// Actions, in Tetragon's terms: Post reports, Override refuses the
// operation with an errno, Sigkill refuses it and kills the caller.
const (
	ActionPost Action = iota + 1
	ActionOverride
	ActionSigkill
)

func (a Action) String() string {
	switch a {
	case ActionPost:
		return "Post"
	case ActionOverride:
		return "Override"
	case ActionSigkill:
		return "Sigkill"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Mode says whether a profile's refusals are carried out.
type Mode string

// Profile modes.
const (
	ModeEnforce Mode = "enforce"
	ModeMonitor Mode = "monitor"
)

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi uint16 }

// Limits the kernel side holds per point and per selector.
const (
	MaxSelectors  = 8
	MaxPortRanges = 4
	MaxNameLen    = 32
)

// Selector is one ordered rule at a point; its predicates are ANDed and
// an empty predicate matches anything.
type Selector struct {
	Call        string         // the hook name reported in events, e.g. "tcp_connect"
	Family      uint8          // AF_*; 0: any
	Protocol    uint8          // IPPROTO_*; 0: any
	SockType    uint8          // SOCK_*; 0: any
	DaddrIn     []netip.Prefix // destination in one of these
	DaddrNotIn  []netip.Prefix // destination in none of these
	DportIn     []PortRange
	DportNotIn  []PortRange
	BinaryIn    []string // executable base name or command name
	BinaryNotIn []string
	StdioInet   bool // exec only: fd 0, 1 or 2 is an INET/INET6 socket
	Action      Action
	Errno       int // for ActionOverride; EPERM when 0
}

// Profile is a compiled workload profile.
type Profile struct {
	Name     string
	Policy   string // policy_name reported in events
	Mode     Mode
	FailOpen bool
	Points   [NumPoints][]Selector
}

// Validate checks what the kernel side can hold.
func (p *Profile) Validate() error {
	if p.Name == "" {
		return fmt.Errorf("profile has no name")
	}
	if p.Mode != ModeEnforce && p.Mode != ModeMonitor {
		return fmt.Errorf("profile %q: mode %q: want %q or %q", p.Name, p.Mode, ModeEnforce, ModeMonitor)
	}
	for pt, sels := range p.Points {
		if len(sels) > MaxSelectors {
			return fmt.Errorf("profile %q: %s: %d selectors, at most %d", p.Name, Point(pt), len(sels), MaxSelectors)
		}
		for i, s := range sels {
			if err := s.validate(); err != nil {
				return fmt.Errorf("profile %q: %s selector %d: %w", p.Name, Point(pt), i, err)
			}
		}
	}
	return nil
}

func (s *Selector) validate() error {
	switch {
	case s.Action < ActionPost || s.Action > ActionSigkill:
		return fmt.Errorf("unknown action %d", int(s.Action))
	case len(s.DaddrIn) > 0 && len(s.DaddrNotIn) > 0:
		return fmt.Errorf("both DAddr and NotDAddr in one selector")
	case len(s.DportIn) > 0 && len(s.DportNotIn) > 0:
		return fmt.Errorf("both DPort and NotDPort in one selector")
	case len(s.BinaryIn) > 0 && len(s.BinaryNotIn) > 0:
		return fmt.Errorf("both In and NotIn binaries in one selector")
	case len(s.DportIn) > MaxPortRanges || len(s.DportNotIn) > MaxPortRanges:
		return fmt.Errorf("more than %d port ranges", MaxPortRanges)
	case s.Errno < 0:
		return fmt.Errorf("errno %d: want a positive errno", s.Errno)
	}
	for _, r := range append(append([]PortRange{}, s.DportIn...), s.DportNotIn...) {
		if r.Lo > r.Hi {
			return fmt.Errorf("port range %d-%d is empty", r.Lo, r.Hi)
		}
	}
	for _, n := range append(append([]string{}, s.BinaryIn...), s.BinaryNotIn...) {
		if n == "" || len(n) > MaxNameLen {
			return fmt.Errorf("binary name %q: want 1 to %d bytes", n, MaxNameLen)
		}
	}
	for _, p := range append(append([]netip.Prefix{}, s.DaddrIn...), s.DaddrNotIn...) {
		if !p.IsValid() {
			return fmt.Errorf("invalid address prefix %v", p)
		}
	}
	return nil
}
