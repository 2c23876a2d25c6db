package policy

import "net/netip"

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
	Mode    string
	Kprobes []Kprobe
}

// Kprobe is one spec.kprobes[] entry.
type Kprobe struct {
	Pos
	Call            string // one of SupportedCalls
	Return          bool
	Args            []Arg
	ReturnArg       *Arg       // set only when Return is true
	ReturnArgAction string     // "", "TrackSock" or "UntrackSock"
	Selectors       []Selector // none: every call is reported (Tetragon's behaviour)
	Message         string
	Tags            []string
}

// Arg is a declared argument (args[]) or the return value (returnArg).
type Arg struct {
	Pos
	Index int    // 0-4
	Type  string // sock, socket, sockaddr or int
	Label string // optional, kept as written
}

// Selector is one selectors[] entry. Its matches are ANDed; within one
// ArgMatch, BinaryMatch or NamespaceMatch the values are ORed.
type Selector struct {
	Pos
	Args       []ArgMatch
	Binaries   []BinaryMatch
	Namespaces []NamespaceMatch
	// Actions is never empty: a selector without matchActions gets one
	// Post action (Tetragon's default) and ImplicitPost is set.
	Actions      []Action
	ImplicitPost bool
}

// ArgMatch is one matchArgs[] entry. Exactly one of Prefixes, Ports or
// Numbers is filled, depending on the operator:
//
//	SAddr DAddr NotSAddr NotDAddr          Prefixes (masked; Raw keeps the text)
//	SPort DPort NotSPort NotDPort          Ports
//	Protocol Family State Equal NotEqual   Numbers (names resolved)
//	SPortPriv DPortPriv NotSPortPriv ...   none (no values allowed)
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

// Action is one matchActions[] entry.
type Action struct {
	Pos
	Action   string
	ArgError int32 // negative errno; Override (required), NotifyEnforcer (default -1)
	ArgSig   int   // signal number; Signal (required), NotifyEnforcer (optional)
	ArgSock  int   // TrackSock/UntrackSock: index of the sock argument (default 0)
	// HasArgError and HasArgSig say whether argError and argSig were given.
	HasArgError, HasArgSig bool
}
