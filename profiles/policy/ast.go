package policy

import (
	"net/netip"
	"time"
)

// Pos is where a node starts: the file name given to Parse (or the path
// given to ParseFile and LoadDir) and a 1-based line. It has no String
// method on purpose: every node embeds it, and printing a node should
// print the node.
type Pos struct {
	File string
	Line int
}

// TracingPolicy is a validated kind TracingPolicy (or TracingPolicyNamespaced)
// of apiVersion cilium.io/v1alpha1, or an inline policy of a WorkloadProfile.
type TracingPolicy struct {
	Pos
	Name string // metadata.name
	// Namespace, Labels and Annotations are metadata.namespace, .labels and
	// .annotations, kept as written; ocigate gives them no meaning.
	Namespace   string
	Labels      map[string]string
	Annotations map[string]string
	// Mode is the policy-mode option: "monitor", "enforce", or "" when
	// not given (Tetragon then enforces; how it combines with the
	// profile's mode is the compiler's decision).
	Mode string
	// Namespaced is kind TracingPolicyNamespaced.
	Namespaced bool
	// Options are spec.options by name, as written (policy-mode is Mode).
	Options map[string]string
	// Notes say what of the policy ocigate carries out differently from
	// Tetragon (it loads all the same).
	Notes []Note
	// Kprobes are the policy's hooks in the order written: spec.kprobes,
	// fentries, lsmhooks and tracepoints, a kprobe naming a list once per
	// call of the list.
	Kprobes []Kprobe
}

// Kprobe is one hook: a spec.kprobes[] or fentries[] entry (one per call
// of a list it names), an lsmhooks[] or a tracepoints[] entry.
type Kprobe struct {
	Pos
	Field   string // where it was written, e.g. "spec.lsmhooks[0]"
	Hook    string // HookKprobe, HookFentry, HookLSM or HookTracepoint
	Call    string // a call of SupportedCalls, an LSM hook, or a tracepoint's "subsystem/event"
	Syscall bool   // a system call (sys_...)
	Return  bool
	Args    []Arg
	// ReturnArg is set only when Return is true (Tetragon reads it only
	// then): its index is optional and has no meaning.
	ReturnArg       *Arg
	ReturnArgAction string     // "", "TrackSock" or "UntrackSock"
	Selectors       []Selector // none: every call is reported (Tetragon's behaviour)
	Message         string
	Tags            []string
}

// Arg is a declared argument (args[]) or the return value (returnArg).
type Arg struct {
	Pos
	Index   int    // the function's argument (tracepoints: the format field)
	Type    string // as written: sock, socket, sockaddr, skb, int (or another integer type), fd, linux_binprm, file, path, string, ...
	Label   string // optional, kept as written
	Resolve string // Tetragon's resolve path on the argument, e.g. "file"
}

// Selector is one selectors[] entry. Its matches are ANDed; within one
// ArgMatch, BinaryMatch or NamespaceMatch the values are ORed.
type Selector struct {
	Pos
	Label      string // kept as written
	Args       []ArgMatch
	Binaries   []BinaryMatch
	Namespaces []NamespaceMatch
	// PIDs, Capabilities and NamespaceChanges are matchPIDs,
	// matchCapabilities and matchNamespaceChanges.
	PIDs             []PIDMatch
	Capabilities     []CapabilityMatch
	NamespaceChanges []NamespaceChangeMatch
	// Actions is never empty: a selector without matchActions gets one
	// Post action (Tetragon's default) and ImplicitPost is set.
	Actions      []Action
	ImplicitPost bool
}

// ArgMatch is one matchArgs[] entry. At most one of Prefixes, Ports,
// Numbers, Strings and Syscalls is filled, depending on the operator and
// the argument's type:
//
//	SAddr DAddr NotSAddr NotDAddr            Prefixes (masked; Raw keeps the text)
//	SPort DPort NotSPort NotDPort            Ports
//	Protocol Family State                    Numbers (names resolved)
//	Equal NotEqual InMap NotInMap on ints    Numbers; on raw_syscalls' id: Syscalls (sys_ names)
//	Equal NotEqual Prefix NotPrefix Postfix  Strings (paths, names) on linux_binprm, file, path, string
//	  NotPostfix
//	SPortPriv DPortPriv NotSPortPriv ...     none (no values allowed)
//
// On a sockaddr argument SAddr/SPort mean the address and port in the
// sockaddr, i.e. the destination of a connect; the operator is kept as
// written.
type ArgMatch struct {
	Pos
	Index    int
	ArgType  string // the declared type of args[] with this index
	Operator string
	Prefixes []netip.Prefix
	Ports    []PortRange
	Numbers  []int64
	Strings  []string
	Syscalls []string // system calls by name, "sys_" prefixed, lists expanded
	Raw      []string // the values as written
}

// PortRange is an inclusive range of ports; a single port has Lo == Hi.
type PortRange struct{ Lo, Hi uint16 }

// BinaryMatch is one matchBinaries[] entry.
type BinaryMatch struct {
	Pos
	Operator string // In, NotIn, Prefix, NotPrefix, Postfix, NotPostfix
	Values   []string
}

// NamespaceMatch is one matchNamespaces[] entry. HostNS means the value
// "host_ns" was given: the host's namespace of that type.
type NamespaceMatch struct {
	Pos
	Namespace string // Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup, User
	Operator  string // In or NotIn
	Inodes    []uint64
	HostNS    bool
}

// PIDMatch is one matchPIDs[] entry.
type PIDMatch struct {
	Pos
	Operator       string // In or NotIn
	Values         []uint32
	FollowForks    bool // the processes' descendants match too
	IsNamespacePID bool // the pids are in the process's pid namespace (the container's)
}

// CapabilityMatch is one matchCapabilities[] entry: whether the set Type
// holds any of Caps (In) or none (NotIn).
type CapabilityMatch struct {
	Pos
	Type                  string // Effective (default), Inheritable or Permitted
	Operator              string // In or NotIn
	Caps                  []int  // capability numbers (CAP_ names resolved)
	IsNamespaceCapability bool
}

// NamespaceChangeMatch is one matchNamespaceChanges[] entry: whether the
// process's namespaces of the named types differ (In) or not (NotIn)
// from those it had at its exec.
type NamespaceChangeMatch struct {
	Pos
	Operator   string // In or NotIn
	Namespaces []string
}

// Action is one matchActions[] entry.
type Action struct {
	Pos
	Action string
	// ArgError is Override's and NotifyEnforcer's value: a negative errno,
	// or a positive value the call returns instead (Tetragon's meaning);
	// Override requires it, NotifyEnforcer defaults to -1.
	ArgError int32
	ArgSig   int // signal number; Signal (required), NotifyEnforcer (optional)
	ArgSock  int // TrackSock/UntrackSock: index of the sock argument (default 0)
	// HasArgError and HasArgSig say whether argError and argSig were given.
	HasArgError, HasArgSig bool
	ArgURL                 string // GetUrl: the URL the agent requests (GET)
	ArgFQDN                string // DnsLookup: the name the agent looks up
	// RateLimit is Post's rateLimit: at most one event per window for the
	// same selector, process (or thread, or all) and arguments; 0: none.
	RateLimit      time.Duration
	RateLimitScope string // thread (default), process or global
	ImaHash        bool   // Post: the executed file's hash in the event
	// KernelStackTrace and UserStackTrace: Post's stack traces.
	KernelStackTrace, UserStackTrace bool
}
