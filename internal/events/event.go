// Package events defines ocigate's event objects, shaped like Tetragon's
// process_exec, process_exit and process_kprobe so that Tetragon users'
// jq filters read them unchanged, their JSON encoding, and the JSON-lines
// sink that writes them.
package events

import "time"

// Event is one line of the event stream: one of ProcessKprobe,
// ProcessLsm, ProcessTracepoint, ProcessExec, ProcessExit and
// OcigateClaim is set.
type Event struct {
	ProcessKprobe *Kprobe `json:"process_kprobe,omitempty"`
	// ProcessLsm and ProcessTracepoint are decisions of policies' lsmhooks
	// and tracepoints: Tetragon reports those as its process_lsm and
	// process_tracepoint.
	ProcessLsm        *Kprobe     `json:"process_lsm,omitempty"`
	ProcessTracepoint *Kprobe     `json:"process_tracepoint,omitempty"`
	ProcessExec       *Exec       `json:"process_exec,omitempty"`
	ProcessExit       *Exit       `json:"process_exit,omitempty"`
	OcigateClaim      *ClaimEvent `json:"ocigate_claim,omitempty"`
	NodeName          string      `json:"node_name"`
	Time              time.Time   `json:"time"`
	Ocigate           *Ocigate    `json:"ocigate,omitempty"`

	recycler Recycler // nil: the garbage collector frees it (recycle.go)
	holders  int32    // of a recycled event, atomic
}

// Kprobe is a policy hit on an enforcement point: a process_kprobe, or
// the body of a process_lsm or process_tracepoint.
type Kprobe struct {
	Process Process  `json:"process"`
	Parent  *Process `json:"parent,omitempty"`
	// FunctionName is the hook as the policy names it (an LSM hook's
	// name); a tracepoint has Subsys and Event instead.
	FunctionName string `json:"function_name,omitempty"`
	Subsys       string `json:"subsys,omitempty"`
	Event        string `json:"event,omitempty"`
	Args         []Arg  `json:"args"`
	// Return is a return probe's value: ocigate's own refusal.
	Return       *Arg     `json:"return,omitempty"`
	Action       string   `json:"action"`
	PolicyName   string   `json:"policy_name,omitempty"`
	ReturnAction string   `json:"return_action,omitempty"`
	Message      string   `json:"message,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	// ImaHash is the executed file's hash (imaHash), "sha256:HEX".
	ImaHash string `json:"ima_hash,omitempty"`
	// KernelStackTrace and UserStackTrace: Post's stack traces, innermost
	// frame first.
	KernelStackTrace []StackTraceEntry `json:"kernel_stack_trace,omitempty"`
	UserStackTrace   []StackTraceEntry `json:"user_stack_trace,omitempty"`
}

// StackTraceEntry is one frame of a stack trace as Tetragon reports it
// (its 64-bit numbers as JSON strings, as protojson writes them).
type StackTraceEntry struct {
	Address uint64 `json:"address,omitempty,string"`
	Offset  uint64 `json:"offset,omitempty,string"` // into the symbol (kernel) or the mapped file (user)
	Symbol  string `json:"symbol,omitempty"`
	Module  string `json:"module,omitempty"` // user: the mapped file
}

// Exec is a process of a workload starting a program (execve).
type Exec struct {
	Process Process  `json:"process"`
	Parent  *Process `json:"parent,omitempty"`
}

// Exit is the end of a workload process: its last thread left.
type Exit struct {
	Process Process  `json:"process"`
	Parent  *Process `json:"parent,omitempty"`
	// Signal is the signal that ended it (SIGKILL), "" when it exited.
	Signal string `json:"signal,omitempty"`
	// Status is its exit status when it exited (0 when a signal ended it).
	Status uint32    `json:"status"`
	Time   time.Time `json:"time"`
}

// Value wraps a number the way the seeds' filters read it (.pid.value).
type Value struct {
	Value uint32 `json:"value"`
}

// Process describes a process: the one an event is about, or its parent.
// Values are shared between events and must not be changed once
// published.
type Process struct {
	// ExecID names one program run of one process: the same in every
	// event of it (see docs/events.md for its form).
	ExecID    string `json:"exec_id,omitempty"`
	Pid       Value  `json:"pid"`
	UID       Value  `json:"uid"`
	Cwd       string `json:"cwd,omitempty"`
	Binary    string `json:"binary"`
	Arguments string `json:"arguments,omitempty"`
	// Flags say how ocigate learned of the process, as Tetragon's do:
	// "execve" (its exec was seen), "clone" (forked, no exec seen yet),
	// "procFS" (read from /proc: it started before it was tracked).
	Flags string `json:"flags,omitempty"`
	// StartTime is when the program started: the exec, or the process's
	// start when its exec was not seen.
	StartTime    time.Time `json:"start_time,omitzero"`
	Pod          *Pod      `json:"pod,omitempty"`
	Docker       string    `json:"docker,omitempty"`
	ParentExecID string    `json:"parent_exec_id,omitempty"`

	encoded []byte // Freeze's encoding, copied with the value
}

// Freeze encodes p once for AppendJSON to reuse, in p and in every copy
// made of it afterwards: a process named by thousands of events is
// encoded once. p and its copies must not change afterwards unless Thaw
// is called on the one that changes.
func (p *Process) Freeze() {
	if validTime(p.StartTime) { // else AppendJSON refuses it each time
		p.encoded = p.appendFields(nil)
	}
}

// Thaw forgets Freeze's encoding, before p changes.
func (p *Process) Thaw() { p.encoded = nil }

// Frozen reports whether p holds Freeze's encoding.
func (p *Process) Frozen() bool { return p.encoded != nil }

// Pod carries container identity where Tetragon puts it.
type Pod struct {
	Namespace string    `json:"namespace,omitempty"`
	Name      string    `json:"name,omitempty"`
	Container Container `json:"container"`
	// PodLabels, Workload and WorkloadKind are the API server's, where
	// ocigate-kube tells the agent (Kubernetes only).
	PodLabels    map[string]string `json:"pod_labels,omitempty"`
	Workload     string            `json:"workload,omitempty"`
	WorkloadKind string            `json:"workload_kind,omitempty"`
}

// Container names the container of a process.
type Container struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Image Image  `json:"image"`
}

// Image names a container image.
type Image struct {
	Name string `json:"name,omitempty"`
}

// Arg is one argument of the hooked function; one field is set (none
// when ocigate does not read the argument), and Label when the policy
// labels it.
type Arg struct {
	SockArg        *SockArg     `json:"sock_arg,omitempty"`
	SockaddrArg    *SockaddrArg `json:"sockaddr_arg,omitempty"`
	SkbArg         *SkbArg      `json:"skb_arg,omitempty"`
	IntArg         *IntArg      `json:"int_arg,omitempty"`
	FileArg        *FileArg     `json:"file_arg,omitempty"`
	PathArg        *FileArg     `json:"path_arg,omitempty"`
	LinuxBinprmArg *FileArg     `json:"linux_binprm_arg,omitempty"`
	StringArg      *string      `json:"string_arg,omitempty"`
	SyscallID      *SyscallID   `json:"syscall_id,omitempty"`
	NetDevArg      *NetDevArg   `json:"net_dev_arg,omitempty"`
	Label          string       `json:"label,omitempty"`
}

// SkbArg is a packet as Tetragon reports it (the parts ocigate knows).
type SkbArg struct {
	Family   string `json:"family"`
	Protocol string `json:"protocol"`
	Proto    uint32 `json:"proto"`
	Saddr    string `json:"saddr,omitempty"`
	Daddr    string `json:"daddr,omitempty"`
	Sport    uint32 `json:"sport,omitempty"`
	Dport    uint32 `json:"dport,omitempty"`
}

// NetDevArg is a network device as Tetragon reports it: its name.
type NetDevArg struct {
	Name string `json:"name"`
}

// SyscallID is a system call of raw_syscalls.
type SyscallID struct {
	ID  uint32 `json:"id"`
	ABI string `json:"abi"`
}

// SockArg is a socket as Tetragon reports it.
type SockArg struct {
	Family   string `json:"family"`
	Type     string `json:"type"`
	Protocol string `json:"protocol"`
	Saddr    string `json:"saddr,omitempty"`
	Daddr    string `json:"daddr,omitempty"`
	Sport    uint32 `json:"sport,omitempty"`
	Dport    uint32 `json:"dport,omitempty"`
	State    string `json:"state,omitempty"`
}

// SockaddrArg is a socket address argument.
type SockaddrArg struct {
	Family string `json:"family"`
	Addr   string `json:"addr"`
	Port   uint32 `json:"port"`
}

// IntArg is an integer argument.
type IntArg struct {
	Value int64 `json:"value"`
}

// FileArg is a file argument (the executed file for exec).
type FileArg struct {
	Path string `json:"path"`
}

// Ocigate is what only ocigate knows: workload, profile and verdict.
// Process events (exec, exit) have no point, verdict, mechanism or
// selector, and carry out nothing (Enforced false); Backend is the exec
// point's.
type Ocigate struct {
	ContainerID string `json:"container_id"`
	Runtime     string `json:"runtime,omitempty"`
	// Adopted: the workload was adopted running, when the agent started;
	// what its processes did before was not seen.
	Adopted   bool   `json:"adopted,omitempty"`
	Profile   string `json:"profile"`
	Mode      string `json:"mode"`
	Point     string `json:"point,omitempty"`
	Enforced  bool   `json:"enforced"`
	Verdict   string `json:"verdict,omitempty"`
	Errno     int32  `json:"errno,omitempty"`
	Backend   string `json:"backend,omitempty"`
	Mechanism string `json:"mechanism,omitempty"`
	CgroupID  uint64 `json:"cgroup_id"`
	Selector  *int   `json:"selector,omitempty"` // the selector of the point that matched
	// ParentOutside: the process's parent is not in the workload: the
	// container runtime (runc, conmon, a shim) for its first process.
	ParentOutside bool `json:"parent_outside_workload,omitempty"`
	// TrackSock: the event is attributed to the socket's creator; this is
	// the process that did the operation when it is another one.
	CallerPid uint32 `json:"caller_pid,omitempty"`
	// Relayed shells: how the relay was recognised ("parent", "pipe";
	// ",at_connect" when the peer connected after the shell started) and
	// the process that holds the network socket.
	Relay   string `json:"relay,omitempty"`
	PeerPid uint32 `json:"peer_pid,omitempty"`
	// StdioSockets are the standard descriptors (0-2) an exec had on a
	// network socket, where its arguments do not say it.
	StdioSockets []int `json:"stdio_sockets,omitempty"`
	// Predicate names the exec-time predicate of the selector that
	// matched (profiles.Selector.Predicate: dialled-stdio-socket,
	// shell-stdio-socket, relayed-shell, fileless, ...); Evidence says in
	// plain words what the kernel saw: the stdio kinds, the process that
	// dialled or relays the connection, the name or file that matched.
	// A user writes a narrow exception from them.
	Predicate string `json:"predicate,omitempty"`
	Evidence  string `json:"evidence,omitempty"`
	// Note says what ocigate did where it could not do exactly what the
	// policy asks (Tetragon's meaning), e.g. an Override value the
	// backend cannot return.
	Note string `json:"note,omitempty"`
}

// Tetragon's action names.
const (
	ActionPost           = "KPROBE_ACTION_POST"
	ActionOverride       = "KPROBE_ACTION_OVERRIDE"
	ActionSigkill        = "KPROBE_ACTION_SIGKILL"
	ActionSignal         = "KPROBE_ACTION_SIGNAL"
	ActionNotifyEnforcer = "KPROBE_ACTION_NOTIFYENFORCER"
)
