// Package record reads the kernel's ring buffer and decodes its records
// (struct event of common.h) into RawEvent: decisions, and the exec,
// clone and exit of workload processes. It knows the record's layout
// from bpf and nothing of how the programs were loaded.
package record

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/profiles"
)

// Relay says how a relayed shell was recognised (enum relay in common.h).
type Relay uint8

const (
	RelayParent    Relay = bpf.RelayParent    // an ancestor of the shell connected
	RelayPipe      Relay = bpf.RelayPipe      // the reader of the shell's stdout connected
	RelayAtConnect Relay = bpf.RelayAtConnect // the peer connected after the shell's exec
	relayMask            = uint8(RelayParent | RelayPipe | RelayAtConnect)
)

// String names the relay as events report it.
func (r Relay) String() string {
	var s string
	switch {
	case r&RelayParent != 0:
		s = "parent"
	case r&RelayPipe != 0:
		s = "pipe"
	default:
		return ""
	}
	if r&RelayAtConnect != 0 {
		s += ",at_connect"
	}
	return s
}

// Kind says what a record reports (enum record_kind in common.h).
type Kind uint8

const (
	KindDecision Kind = bpf.RecordDecision // a selector matched: a process_kprobe event
	KindExec     Kind = bpf.RecordExec     // a workload process exec'd
	KindClone    Kind = bpf.RecordClone    // a workload process started another (not a thread); older objects only
	KindExit     Kind = bpf.RecordExit     // the last thread of a workload process exited
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindDecision:
		return "decision"
	case KindExec:
		return "exec"
	case KindClone:
		return "clone"
	case KindExit:
		return "exit"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// RawEvent is one record of the kernel, decoded: a decision, or (Kind) a
// process's exec, clone or exit.
type RawEvent struct {
	Kind             Kind
	BootNs           uint64 // CLOCK_BOOTTIME
	CgroupID         uint64 // the process's own cgroup
	WorkloadCgroupID uint64 // the registered cgroup that matched
	Pid, Tgid, Ppid  uint32
	UID              uint32
	Profile          uint32
	Errno            int32
	Point            profiles.Point
	Action           profiles.Action
	Selector         int
	Enforced         bool   // the verdict was carried out
	Killed           bool   // SIGKILL sent in the kernel
	KillPending      bool   // SIGKILL asked but left to the agent
	Backend          string // lsm, fmod_ret or fallback
	Mechanism        string
	Family           uint8
	SockType         uint8
	Protocol         uint8
	Monitor          bool // would have been enforced (monitor mode)
	SignalPending    bool // Signal left to the agent
	Signal           int
	Group            int
	State            uint8
	HasAddr          bool
	Daddr            netip.Addr
	Dport            uint16
	Saddr            netip.Addr // zero when unknown
	Sport            uint16
	StdioInet        uint8  // bit i: fd i is an INET socket
	Relay            Relay  // relay: how the relayed shell was recognised
	Peer             uint32 // relay: tgid of the process that holds the network socket
	// Args is the new image's argv, read at sched_process_exec (exec and
	// relay events of the fallback and tracepoint programs); nil elsewhere.
	// ArgsCut: argv went on beyond what the event holds.
	Args     []string
	ArgsCut  bool
	Fileless bool // exec: the file had no link (memfd, deleted)
	// Dialled (exec): the stdio socket was dialled by the process or an
	// ancestor, Peer.
	Dialled bool
	Comm    string
	// AncestorComm is the comm of the process's parent and grandparent
	// (decisions; empty where the process is not the current task).
	AncestorComm [2]string
	Binary       string // exec: base name of the executed file
	Path         string // the binary's path (exec: the new one), when known
	Owner        uint32 // TrackSock: tgid that created the socket, 0 when not tracked
	OldFD, NewFD int32  // dup
	// StartNs is the process's start (the thread group's start_boottime,
	// CLOCK_BOOTTIME ns): with Tgid, its identity. 0 when unknown (a
	// relayed shell reported at its peer's connect).
	StartNs uint64
	// ParentStartNs is the parent's (Ppid's) start; exec and clone.
	ParentStartNs uint64
	// ExitCode is the wait status of an exit: (code << 8) | signal.
	ExitCode uint32
	// DropReason is a drop's enum skb_drop_reason (0 where the kernel
	// has none).
	DropReason uint32
	// KernelStack and UserStack are the stack traces the device-layer
	// points took for Post kernelStackTrace and userStackTrace: return
	// addresses, innermost first; nil when none was taken. The Reader
	// fills them from the ids the record carries (StackIDs).
	KernelStack, UserStack []uint64
	// StackIDs are the record's stack_traces ids + 1 (0: none), kernel
	// then user.
	StackIDs [2]int32

	argsBuf []string // Args' array, kept for the next ReadInto
}

// enforcers: the kernel's enforcer id -> backend and mechanism.
var enforcers = map[uint8][2]string{
	bpf.EnforcerCgroupSockAddr:    {bpf.BackendFallback, "cgroup_sock_addr"},
	bpf.EnforcerCgroupSock:        {bpf.BackendFallback, "cgroup_sock_create"},
	bpf.EnforcerTracepointSigkill: {bpf.BackendFallback, "tracepoint_sigkill"},
	bpf.EnforcerLSM:               {bpf.BackendLSM, "bpf_lsm"},
	bpf.EnforcerFmodRet:           {bpf.BackendFmodRet, "fmod_ret"},
	bpf.EnforcerCgroupSockRelease: {bpf.BackendFallback, "cgroup_sock_release"},
	bpf.EnforcerTracepoint:        {bpf.BackendTracepoint, "tracepoint"},
	bpf.EnforcerCgroupSkb:         {bpf.BackendFallback, "cgroup_skb"},
	bpf.EnforcerFentry:            {bpf.BackendFentry, "fentry"},
}

// eventSize is the size of a record: the C struct event.
const eventSize = int(unsafe.Sizeof(bpf.FallbackEvent{}))

func decodeEvent(b []byte) (*RawEvent, error) {
	ev := &RawEvent{}
	if err := decodeInto(b, ev, nil); err != nil {
		return nil, err
	}
	return ev, nil
}

// decodeInto decodes one record. The record is copied as it lies in
// memory: bpf2go's bindings exist for little-endian targets only, which
// the BPF objects are built for, and the struct has no implicit padding
// (TestEventLayoutHasNoPadding).
func decodeInto(b []byte, ev *RawEvent, in *interner) error {
	if len(b) < eventSize {
		return fmt.Errorf("decode event (%d bytes): %w", len(b), io.ErrUnexpectedEOF)
	}
	var k bpf.FallbackEvent
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&k)), eventSize), b)
	buf := ev.argsBuf[:0]
	*ev = RawEvent{
		Kind:   Kind(k.Kind),
		BootNs: k.KtimeNs, CgroupID: k.CgroupId, WorkloadCgroupID: k.WorkloadCgroupId,
		Pid: k.Pid, Tgid: k.Tgid, Ppid: k.Ppid, UID: k.Uid, Profile: k.Profile, Errno: k.Err,
		Point: profiles.Point(k.Point), Action: profiles.Action(k.Action), Selector: int(k.Selector),
		Enforced: k.Flags&bpf.EventEnforced != 0, Killed: k.Flags&bpf.EventKilled != 0,
		KillPending: k.Flags&bpf.EventKillPending != 0, HasAddr: k.Flags&bpf.EventHasAddr != 0,
		Backend: enforcers[k.Enforcer][0], Mechanism: enforcers[k.Enforcer][1], Family: k.Family, SockType: k.SockType, Protocol: k.Protocol,
		Monitor: k.Flags&bpf.EventMonitor != 0, SignalPending: k.Flags&bpf.EventSignalPending != 0,
		Signal: int(k.Signal), Group: int(k.Group), State: k.State,
		Dport: k.Dport, Sport: k.Sport, StdioInet: k.StdioInet & 0x07, Fileless: k.StdioInet&0x80 != 0,
		Dialled: k.StdioInet&bpf.StdioDialled != 0 && k.StdioInet&0x07 != 0,
		Relay:   Relay(k.StdioInet & relayMask), Peer: k.Peer,
		Comm: in.str(k.Comm[:], slotComm), Binary: in.str(k.Binary[:], slotBinary), Path: in.str(k.Path[:], slotPath),
		AncestorComm: [2]string{in.str(k.AncestorComm[0][:], slotParent), in.str(k.AncestorComm[1][:], slotGrandparent)},
		Owner:        k.Owner, OldFD: k.OldFd, NewFD: k.NewFd,
		StartNs: k.StartTime, ParentStartNs: k.ParentStartTime, ExitCode: k.ExitCode,
		DropReason: k.DropReason, StackIDs: [2]int32{k.KernelStack, k.UserStack}, argsBuf: buf,
	}
	if k.ArgsLen > 0 && int(k.ArgsLen) <= len(k.Args) {
		ev.Args, ev.ArgsCut = splitArgs(buf, bpf.CChars(k.Args[:k.ArgsLen]))
		ev.argsBuf = ev.Args
	}
	if k.Sport != 0 || k.Saddr != ([16]uint8{}) {
		ev.Saddr = unmapped(netip.AddrFrom16(k.Saddr), ev.Family)
	}
	if ev.HasAddr {
		ev.Daddr = unmapped(netip.AddrFrom16(k.Daddr), ev.Family)
	}
	return nil
}

func unmapped(a netip.Addr, family uint8) netip.Addr {
	if family == unix.AF_INET || a.Is4In6() {
		return a.Unmap()
	}
	return a
}

// interner hands out one string per distinct name or path, so a busy
// process's thousands of events share their strings instead of
// allocating each. It is bounded: full, it starts over. Each field
// (slot) remembers its last string too: records come in runs from one
// process, and comparing with the last one costs less than hashing.
type interner struct {
	m    map[string]string
	last [slots]string
}

// The record's string fields, each with its last string.
const (
	slotComm = iota
	slotBinary
	slotPath
	slotParent
	slotGrandparent
	slots
)

const internMax = 4096

// str is CString(b), interned; a nil interner only converts. slot names
// the field.
func (in *interner) str(b []int8, slot int) string {
	raw := bpf.CBytes(b)
	if in == nil || len(raw) == 0 {
		return string(raw)
	}
	if last := in.last[slot]; string(raw) == last {
		return last
	}
	if s, ok := in.m[string(raw)]; ok { // no allocation for the lookup
		in.last[slot] = s
		return s
	}
	if in.m == nil || len(in.m) >= internMax {
		in.m = make(map[string]string, 256)
	}
	s := string(raw)
	in.m[s] = s
	in.last[slot] = s
	return s
}

// splitArgs splits NUL-separated argv bytes into args (reused); cut when
// the last argument has no terminator (the event's room ended inside it).
func splitArgs(args []string, b []byte) (_ []string, cut bool) {
	cut = len(b) > 0 && b[len(b)-1] != 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			args = append(args, string(b))
			break
		}
		args = append(args, string(b[:i]))
		b = b[i+1:]
	}
	return args, cut
}
