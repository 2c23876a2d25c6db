// Package profiles turns workload profiles into a kernel-neutral rule set:
// ordered selectors per enforcement point. The bpf package writes a rule
// set into its maps; nothing here knows about BPF.
package profiles

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Point is an enforcement point: an operation a selector can decide on.
type Point int

// The enforcement points (docs/architecture.md, "Enforcement points and backends").
const (
	PointConnect Point = iota
	PointSendmsg
	PointBind
	PointSockCreate
	PointExec
	PointListen
	PointClose
	PointDup
	PointMemfd
	PointRelay   // a shell relayed to a network peer: at its exec or its peer's connect
	PointAccept  // a TCP connection the kernel accepts for a listener (softirq): reported only
	PointReceive // a packet delivered to a workload's socket (softirq): reported only
	PointXmit    // a packet of a workload's socket leaving through a device: reported only
	PointDrop    // a packet of a workload's socket the kernel drops: reported only
	NumPoints
)

var pointNames = [NumPoints]string{"connect", "sendmsg", "bind", "sock_create", "exec", "listen", "close", "dup", "memfd", "relay", "accept", "receive", "xmit", "drop"}

func (p Point) String() string {
	if p < 0 || p >= NumPoints {
		return fmt.Sprintf("point(%d)", int(p))
	}
	return pointNames[p]
}

// Action is what a matching selector does.
type Action int

// Actions, in Tetragon's terms: Post reports, Override refuses the
// operation with an errno, Sigkill refuses it and kills the caller, Signal
// reports and sends a signal, NotifyEnforcer refuses with an errno and
// optionally signals.
const (
	ActionPost Action = iota + 1
	ActionOverride
	ActionSigkill
	ActionSignal
	ActionNotifyEnforcer
)

var actionNames = map[Action]string{
	ActionPost: "Post", ActionOverride: "Override", ActionSigkill: "Sigkill",
	ActionSignal: "Signal", ActionNotifyEnforcer: "NotifyEnforcer",
}

func (a Action) String() string {
	if n, ok := actionNames[a]; ok {
		return n
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Denies reports whether the action refuses the operation.
func (a Action) Denies() bool {
	return a == ActionOverride || a == ActionSigkill || a == ActionNotifyEnforcer
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

// PrivilegedPorts are the ports SPortPriv and DPortPriv match.
var PrivilegedPorts = PortRange{0, 1023}

// Limits the kernel side holds.
const (
	MaxSelectors = 16 // per point and profile, all policies together
	MaxGroups    = 8  // policies per point and profile
	MaxNameLen   = 32 // NameMatch entries
	MaxPathLen   = 256
	MaxPrefixLen = 128 // Prefix and Postfix values
)

// AddrMatch is a set of prefixes the address must (or, Not, must not) be in.
type AddrMatch struct {
	Not      bool
	Prefixes []netip.Prefix
}

// Set reports whether the match constrains anything.
func (m AddrMatch) Set() bool { return len(m.Prefixes) > 0 }

// PortMatch is a set of port ranges the port must (not) be in.
type PortMatch struct {
	Not    bool
	Ranges []PortRange
}

// Set reports whether the match constrains anything.
func (m PortMatch) Set() bool { return len(m.Ranges) > 0 }

// Binary match operators, as in Tetragon's matchBinaries.
const (
	BinaryIn         = "In"
	BinaryNotIn      = "NotIn"
	BinaryPrefix     = "Prefix"
	BinaryNotPrefix  = "NotPrefix"
	BinaryPostfix    = "Postfix"
	BinaryNotPostfix = "NotPostfix"
)

// BinaryMatch matches the executing binary's path.
type BinaryMatch struct {
	Operator string
	Values   []string
}

// NameMatch matches an executable's base name or the name it runs as
// (busybox applets): the embedded profiles' way to name shells.
type NameMatch struct {
	Not   bool
	Names []string
}

// NamespaceMatch is Tetragon's matchNamespaces; the agent evaluates it
// against each workload's namespace IDs when it registers.
type NamespaceMatch struct {
	Namespace string // Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup, User
	Not       bool
	Inodes    []uint64
	HostNS    bool // the host's namespace of that type
}

// CapsMatch is matchCapabilities: whether the caller's capability set
// (0 effective, 1 inheritable, 2 permitted) holds any of Mask's
// capabilities (or, Not, none).
type CapsMatch struct {
	Set           uint8
	Mask          uint64
	Not           bool
	NamespaceOnly bool // isNamespaceCapability: only outside the host's user namespace
}

// PIDMatch is matchPIDs: whether the caller's pid is one of Values (or,
// Not, none of them).
type PIDMatch struct {
	Not       bool
	Values    []uint32 // at most MaxPIDs
	Namespace bool     // isNamespacePID: the pid in the process's own pid namespace
	Follow    bool     // followForks: the process or one of its ancestors
}

// NsChangeMatch is matchNamespaceChanges: whether a namespace of the
// types in Mask (bit per NamespaceTypes index) differs from the one the
// process had at its exec (In), or none does (Not).
type NsChangeMatch struct {
	Not  bool
	Mask uint16
}

// NamespaceTypes are Tetragon's namespace types, by their bit in
// NsChangeMatch.Mask (the kernel's enum ns_type).
var NamespaceTypes = []string{"Uts", "Ipc", "Mnt", "Pid", "PidForChildren", "Net", "Time", "TimeForChildren", "Cgroup", "User"}

// MaxPIDs is how many values a selector's matchPIDs holds.
const MaxPIDs = 4

// Selector is one rule at a point. The selectors of one policy form a
// group: the first of a group that matches decides for the group, and
// every group is evaluated, as Tetragon evaluates every policy. The
// predicates of a selector are ANDed; an empty predicate matches anything.
type Selector struct {
	Policy string // policy_name reported in events
	Call   string // the hook name reported in events, e.g. "tcp_connect"
	Group  int    // index of the policy among the point's groups

	Families  []uint8 // AF_*
	Protocols []uint8 // IPPROTO_*
	SockTypes []uint8 // SOCK_*
	States    []uint8 // TCP_*
	Fds       []uint8 // dup: the new descriptor (0-31)
	Variant   uint8   // which call of a shared point (dup: 2 dup2, 3 dup3); 0: any

	Daddr AddrMatch // destination (the peer)
	Saddr AddrMatch // source (bind, listen: the local address being bound or listened on)
	Dport PortMatch
	Sport PortMatch

	// Binaries match the binary the process runs; at the exec point, the
	// one that calls exec (Tetragon's matchBinaries). At most one exact
	// (In/NotIn), one prefix, one postfix.
	Binaries []BinaryMatch
	// Paths match the executed file at the exec point (matchArgs on a
	// linux_binprm, file, path, or exec's filename: Equal is In), its own
	// path or the one exec was given; at most one of each kind.
	Paths     []BinaryMatch
	Names     NameMatch
	StdioInet bool // exec only: fd 0, 1 or 2 is an INET/INET6 socket
	// StdioDialled (exec only): fd 0, 1 or 2 is an INET/INET6 socket and
	// the process, its parent or grandparent dialled (connected) a
	// socket of its kind (stream, datagram): a reverse connection, where
	// an inetd-style handler gets an accepted one.
	StdioDialled bool
	Fileless     bool // exec only: the file has no link on disk (memfd, deleted)
	Relayed      bool // relay only: a shell reading commands from a pipe, fifo, pty or unix socket that a connected process relays

	Namespaces []NamespaceMatch
	Caps       *CapsMatch     // matchCapabilities, nil: none
	PIDs       *PIDMatch      // matchPIDs, nil: none
	NsChanges  *NsChangeMatch // matchNamespaceChanges, nil: none

	Action  Action
	Errno   int  // Override, NotifyEnforcer: positive errno (EPERM when 0)
	Signal  int  // Signal, NotifyEnforcer: signal number (0: none)
	NoPost  bool // act without an event
	Monitor bool // report what would be done, never deny or kill (policy-mode: monitor)
	// ReturnValue is a positive argError of Override or NotifyEnforcer: the
	// value the call returns instead of running (Tetragon's meaning),
	// carried out by fmod_ret; the other backends refuse with EPERM.
	ReturnValue int32

	Report // how the selector's events are written and what the agent does on them
}

// Report is what a selector's events say beside the decision, and what
// the agent does when one is read: the hook as the policy wrote it, its
// message and tags, and the actions carried out in user space.
type Report struct {
	Hook    string    // the section the hook was written in: kprobe (""), fentry, lsmhook, tracepoint
	Args    []ArgDecl // the hook's declared arguments, in order
	Return  string    // a return probe's returnArg type, "" when it is not one
	Message string
	Tags    []string
	Syscall string // raw_syscalls: the system call (sys_NAME) the selector is for
	URL     string // GetUrl: the agent requests it (GET) on each event
	FQDN    string // DnsLookup: the agent looks it up on each event
	// RateLimit: the agent writes at most one event per window for the same
	// selector, scope (thread, process or global) and arguments.
	RateLimit      time.Duration
	RateLimitScope string
	ImaHash        bool // the agent adds the executed file's sha256 (ima_hash)
	// KernelStack and UserStack: Post's kernelStackTrace and
	// userStackTrace, taken at the device-layer points.
	KernelStack, UserStack bool
}

// ArgDecl is one declared argument of a hook.
type ArgDecl struct {
	Index   int
	Type    string
	Label   string
	Resolve string // Tetragon's resolve path, as the policy gives it
}

// Profile is a compiled workload profile.
type Profile struct {
	Name     string
	Mode     Mode
	FailOpen bool
	Points   [NumPoints][]Selector
	// TrackSockets: a policy tracks socket ownership (sk_alloc TrackSock).
	TrackSockets bool
	// NoProcessEvents: no exec, clone and exit records for its workloads
	// (spec.processEvents: false).
	NoProcessEvents bool
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
	case s.Action < ActionPost || s.Action > ActionNotifyEnforcer:
		return fmt.Errorf("unknown action %d", int(s.Action))
	case s.Group < 0 || s.Group >= MaxGroups:
		return fmt.Errorf("group %d: at most %d policies per point", s.Group, MaxGroups)
	case s.Errno < 0:
		return fmt.Errorf("errno %d: want a positive errno", s.Errno)
	case s.Signal < 0 || s.Signal > 64:
		return fmt.Errorf("signal %d: want 1 to 64", s.Signal)
	case s.Action == ActionSignal && s.Signal == 0:
		return fmt.Errorf("Signal action without a signal")
	}
	for _, v := range [][]uint8{s.Families, s.SockTypes, s.States, s.Fds} {
		for _, x := range v {
			if x >= 32 {
				return fmt.Errorf("value %d out of range (0-31) for a family, socket type or state", x)
			}
		}
	}
	for _, m := range []PortMatch{s.Dport, s.Sport} {
		for _, r := range m.Ranges {
			if r.Lo > r.Hi {
				return fmt.Errorf("port range %d-%d is empty", r.Lo, r.Hi)
			}
		}
	}
	for _, m := range []AddrMatch{s.Daddr, s.Saddr} {
		for _, p := range m.Prefixes {
			if !p.IsValid() {
				return fmt.Errorf("invalid address prefix %v", p)
			}
		}
	}
	for _, n := range s.Names.Names {
		if n == "" || len(n) > MaxNameLen {
			return fmt.Errorf("name %q: want 1 to %d bytes", n, MaxNameLen)
		}
	}
	if s.PIDs != nil && (len(s.PIDs.Values) == 0 || len(s.PIDs.Values) > MaxPIDs) {
		return fmt.Errorf("matchPIDs: %d pids, want 1 to %d", len(s.PIDs.Values), MaxPIDs)
	}
	if s.Caps != nil && s.Caps.Set > 2 {
		return fmt.Errorf("matchCapabilities: set %d, want 0-2", s.Caps.Set)
	}
	if err := validateBinaries(s.Binaries, "matchBinaries"); err != nil {
		return err
	}
	return validateBinaries(s.Paths, "path")
}

// validateBinaries checks binary or path matches: at most one of each
// kind, values the kernel side can hold.
func validateBinaries(list []BinaryMatch, what string) error {
	seen := map[string]bool{}
	for _, b := range list {
		kind := strings.TrimPrefix(b.Operator, "Not")
		switch kind {
		case BinaryIn, BinaryPrefix, BinaryPostfix:
		default:
			return fmt.Errorf("binary operator %q", b.Operator)
		}
		if seen[kind] {
			return fmt.Errorf("two %s matches of kind %s in one selector", what, kind)
		}
		seen[kind] = true
		limit := MaxPathLen - 1
		if kind != BinaryIn {
			limit = MaxPrefixLen
		}
		for _, v := range b.Values {
			if v == "" || len(v) > limit {
				return fmt.Errorf("%s %q: want 1 to %d bytes", what, v, limit)
			}
		}
	}
	return nil
}
