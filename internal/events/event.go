// Package events defines ocigate's event objects, shaped like Tetragon's
// process_kprobe so that Tetragon users' jq filters read them unchanged,
// and the JSON-lines sink that writes them.
package events

import "time"

// Event is one line of the event stream.
type Event struct {
	ProcessKprobe *Kprobe   `json:"process_kprobe,omitempty"`
	NodeName      string    `json:"node_name"`
	Time          time.Time `json:"time"`
	Ocigate       *Ocigate  `json:"ocigate,omitempty"`
}

// Kprobe is a policy hit on an enforcement point.
type Kprobe struct {
	Process      Process  `json:"process"`
	Parent       *Process `json:"parent,omitempty"`
	FunctionName string   `json:"function_name"`
	Args         []Arg    `json:"args"`
	Action       string   `json:"action"`
	PolicyName   string   `json:"policy_name,omitempty"`
	ReturnAction string   `json:"return_action,omitempty"`
}

// Value wraps a number the way the seeds' filters read it (.pid.value).
type Value struct {
	Value uint32 `json:"value"`
}

// Process describes the process that triggered the event.
type Process struct {
	ExecID    string `json:"exec_id,omitempty"`
	Pid       Value  `json:"pid"`
	UID       Value  `json:"uid"`
	Cwd       string `json:"cwd,omitempty"`
	Binary    string `json:"binary"`
	Arguments string `json:"arguments,omitempty"`
	Docker    string `json:"docker,omitempty"`
	Pod       *Pod   `json:"pod,omitempty"`
}

// Pod carries container identity where Tetragon puts it.
type Pod struct {
	Namespace string    `json:"namespace,omitempty"`
	Name      string    `json:"name,omitempty"`
	Container Container `json:"container"`
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

// Arg is one argument of the hooked function; one field is set.
type Arg struct {
	SockArg     *SockArg     `json:"sock_arg,omitempty"`
	SockaddrArg *SockaddrArg `json:"sockaddr_arg,omitempty"`
	IntArg      *IntArg      `json:"int_arg,omitempty"`
	FileArg     *FileArg     `json:"file_arg,omitempty"`
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
type Ocigate struct {
	ContainerID string `json:"container_id"`
	Runtime     string `json:"runtime,omitempty"`
	// Adopted: the workload was adopted running, when the agent started;
	// what its processes did before was not seen.
	Adopted   bool   `json:"adopted,omitempty"`
	Profile   string `json:"profile"`
	Mode      string `json:"mode"`
	Point     string `json:"point"`
	Enforced  bool   `json:"enforced"`
	Verdict   string `json:"verdict"`
	Errno     int32  `json:"errno,omitempty"`
	Backend   string `json:"backend"`
	Mechanism string `json:"mechanism"`
	CgroupID  uint64 `json:"cgroup_id"`
	Selector  int    `json:"selector"`
	// TrackSock: the event is attributed to the socket's creator; this is
	// the process that did the operation when it is another one.
	CallerPid uint32 `json:"caller_pid,omitempty"`
	// Relayed shells: how the relay was recognised ("parent", "pipe";
	// ",at_connect" when the peer connected after the shell started) and
	// the process that holds the network socket.
	Relay   string `json:"relay,omitempty"`
	PeerPid uint32 `json:"peer_pid,omitempty"`
}

// Tetragon's action names.
const (
	ActionPost           = "KPROBE_ACTION_POST"
	ActionOverride       = "KPROBE_ACTION_OVERRIDE"
	ActionSigkill        = "KPROBE_ACTION_SIGKILL"
	ActionSignal         = "KPROBE_ACTION_SIGNAL"
	ActionNotifyEnforcer = "KPROBE_ACTION_NOTIFYENFORCER"
)
