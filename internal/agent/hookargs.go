package agent

import (
	"fmt"
	"strings"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/profiles/policy"
)

// describeHook fills what an event says of its selector sel: the hook as
// the policy names it, its declared arguments, message, tags, return
// value, and a note where the backend did otherwise than the policy
// asks. It returns the event type's hook kind.
func describeHook(raw *record.RawEvent, sel *profiles.Selector, kp *events.Kprobe, og *events.Ocigate, space *argSpace) string {
	kp.FunctionName, kp.PolicyName = sel.Call, sel.Policy
	kp.Message, kp.Tags = sel.Message, sel.Tags
	if sel.Hook == policy.HookTracepoint {
		kp.Subsys, kp.Event, _ = strings.Cut(sel.Call, "/")
		kp.FunctionName = ""
	}
	if args, ok := declaredArgs(raw, sel, space); ok {
		kp.Args = args
		og.StdioSockets = stdioSockets(raw)
	}
	kp.Return = returnArg(raw, sel)
	if raw.Point == profiles.PointExec || raw.Point == profiles.PointRelay {
		og.Predicate, og.Evidence = predicateEvidence(raw, sel)
	}
	if sel.Action == profiles.ActionNotifyEnforcer && raw.Action == profiles.ActionOverride {
		kp.Action = events.ActionNotifyEnforcer // the kernel refuses either the same way
	}
	if sel.ReturnValue > 0 && raw.Enforced {
		if raw.Backend == bpf.BackendFmodRet {
			og.Errno = 0
			og.Note = fmt.Sprintf("returned %d from %s, as the policy's Override asks", sel.ReturnValue, sel.Call)
		} else {
			og.Note = fmt.Sprintf("Override argError %d: the %s backend cannot return a positive value; the call was refused with -EPERM instead", sel.ReturnValue, raw.Backend)
		}
	}
	if raw.SignalPending && raw.Signal > 0 && og.Note == "" {
		og.Note = fmt.Sprintf("%s cannot send a signal: the agent sent signal %d when it read the event, after the call returned", raw.Mechanism, raw.Signal)
	}
	return sel.Hook
}

// declaredArgs is the event's arguments as the hook declares them, in
// order, as Tetragon reports them; false when it declares none (the
// built-in selectors; memfd_create), whose arguments are eventArgs'.
// They are made in space (nil: allocated) when they fit.
func declaredArgs(raw *record.RawEvent, sel *profiles.Selector, space *argSpace) ([]events.Arg, bool) {
	if len(sel.Args) == 0 {
		return nil, false
	}
	var args []events.Arg
	if space != nil && len(sel.Args) <= len(space.args) {
		args = space.args[:0]
	} else {
		args, space = make([]events.Arg, 0, len(sel.Args)), nil
	}
	for _, d := range sel.Args {
		var room *events.IntArg
		if space != nil {
			room = &space.ints[len(args)]
		}
		a, ok := argOf(raw, sel, d, room)
		if !ok {
			continue // nop: not reported
		}
		a.Label = d.Label
		args = append(args, a)
	}
	return args, true
}

// argSpace is room, in an event's recycled block, for the arguments a
// hook declares: most declare a few integers (descriptors, families),
// which then cost no allocation.
type argSpace struct {
	args [4]events.Arg
	ints [4]events.IntArg
}

// argOf is one declared argument's value, as far as the kernel's record
// tells it; an argument ocigate does not read is an empty one (its
// label only). false for nop. An integer goes in room when there is
// one.
func argOf(raw *record.RawEvent, sel *profiles.Selector, d profiles.ArgDecl, room *events.IntArg) (events.Arg, bool) {
	switch d.Type {
	case "nop":
		return events.Arg{}, false
	case "sock", "socket":
		if raw.Point == profiles.PointReceive {
			return events.Arg{SockArg: receivingSock(raw)}, true
		}
		return events.Arg{SockArg: sockArg(raw)}, true
	case "skb":
		return events.Arg{SkbArg: skbArg(raw)}, true
	case "sockaddr":
		return events.Arg{SockaddrArg: sockaddrArg(raw)}, true
	case "linux_binprm":
		return events.Arg{LinuxBinprmArg: &events.FileArg{Path: execPath(raw)}}, true
	case "file":
		return events.Arg{FileArg: &events.FileArg{Path: execPath(raw)}}, true
	case "path":
		return events.Arg{PathArg: &events.FileArg{Path: execPath(raw)}}, true
	case "string", "filename", "data_loc":
		if gen, ok := policy.AncestorComm(d.Resolve); ok {
			s := raw.Comm
			if gen > 0 {
				s = raw.AncestorComm[gen-1]
			}
			return events.Arg{StringArg: &s}, true
		}
		s := execPath(raw)
		if raw.Point == profiles.PointMemfd {
			s = raw.Binary
		}
		return events.Arg{StringArg: &s}, true
	case "net_device":
		return events.Arg{NetDevArg: &events.NetDevArg{Name: raw.Binary}}, true
	case "syscall64":
		return events.Arg{SyscallID: &events.SyscallID{ID: uint32(policy.SyscallNumber(sel.Syscall)), ABI: "x64"}}, true
	}
	if v, ok := intOf(raw, sel, d.Index); ok {
		if room == nil {
			room = new(events.IntArg)
		}
		room.Value = v
		return events.Arg{IntArg: room}, true
	}
	return events.Arg{}, true
}

// stdioSockets are the standard descriptors an exec had on a network
// socket (StdioSocket), nil for none or another point.
func stdioSockets(raw *record.RawEvent) []int {
	if raw.Point != profiles.PointExec && raw.Point != profiles.PointRelay {
		return nil
	}
	var fds []int
	for fd := 0; fd < 3; fd++ {
		if raw.StdioInet&(1<<fd) != 0 {
			fds = append(fds, fd)
		}
	}
	return fds
}

// tcpEstablished is TCP_ESTABLISHED, tcp_set_state's new state at an
// accepted connection.
const tcpEstablished = 1

// intOf is an integer argument the record holds: the dup calls'
// descriptors, socket creation's family, type and protocol, the system
// call of raw_syscalls.
func intOf(raw *record.RawEvent, sel *profiles.Selector, index int) (int64, bool) {
	switch {
	case raw.Point == profiles.PointDrop && index == 1:
		return int64(raw.DropReason), true
	case raw.Point == profiles.PointDup && index == 0:
		return int64(raw.OldFD), true
	case raw.Point == profiles.PointDup && index == 1:
		return int64(raw.NewFD), true
	case sel.Syscall != "" && sel.Hook == policy.HookTracepoint:
		return policy.SyscallNumber(sel.Syscall), true
	case raw.Point == profiles.PointAccept && sel.Call == "tcp_set_state" && index == 1:
		return tcpEstablished, true // the only change the accept point sees
	case raw.Point != profiles.PointSockCreate:
		return 0, false
	}
	switch {
	case sel.Call == "sk_alloc" && index == 1, sel.Call != "sk_alloc" && index == 0:
		return int64(raw.Family), true
	case sel.Call != "sk_alloc" && index == 1:
		return int64(raw.SockType), true
	case sel.Call != "sk_alloc" && index == 2:
		return int64(raw.Protocol), true
	}
	return 0, false
}

// returnArg is a return probe's value as ocigate knows it: the socket
// sk_alloc made, or ocigate's refusal (-errno); nil when unknown.
func returnArg(raw *record.RawEvent, sel *profiles.Selector) *events.Arg {
	switch {
	case sel.Return == "":
		return nil
	case sel.Return == "sock":
		return &events.Arg{SockArg: sockArg(raw)}
	case raw.Enforced && raw.Action.Denies() && raw.Errno > 0:
		return &events.Arg{IntArg: &events.IntArg{Value: -int64(raw.Errno)}}
	}
	return nil
}

// execPath is the executed file's path in the record.
func execPath(raw *record.RawEvent) string {
	if raw.Path != "" {
		return raw.Path
	}
	return raw.Binary
}

// sockArg is the record's socket.
func sockArg(raw *record.RawEvent) *events.SockArg {
	sa := &events.SockArg{Family: events.FamilyName(raw.Family), Type: events.SockTypeName(raw.SockType),
		Protocol: events.ProtocolName(raw.Protocol), State: events.StateName(raw.State)}
	if raw.HasAddr {
		sa.Daddr, sa.Dport = raw.Daddr.String(), uint32(raw.Dport)
	}
	if raw.Saddr.IsValid() {
		sa.Saddr, sa.Sport = raw.Saddr.String(), uint32(raw.Sport)
	}
	return sa
}

// receivingSock is the socket a received packet was delivered to: its
// local end is the packet's destination, its peer the packet's source.
func receivingSock(raw *record.RawEvent) *events.SockArg {
	sa := sockArg(raw)
	sa.Saddr, sa.Sport, sa.Daddr, sa.Dport = sa.Daddr, sa.Dport, sa.Saddr, sa.Sport
	return sa
}

// skbArg is the record's socket as the packet it sends.
func skbArg(raw *record.RawEvent) *events.SkbArg {
	s := sockArg(raw)
	return &events.SkbArg{Family: s.Family, Protocol: s.Protocol, Proto: uint32(raw.Protocol),
		Saddr: s.Saddr, Daddr: s.Daddr, Sport: s.Sport, Dport: s.Dport}
}

// sockaddrArg is the address the call was given: the destination, or for
// a bind the local address.
func sockaddrArg(raw *record.RawEvent) *events.SockaddrArg {
	s := sockArg(raw)
	if raw.Point == profiles.PointBind {
		return &events.SockaddrArg{Family: s.Family, Addr: s.Saddr, Port: s.Sport}
	}
	return &events.SockaddrArg{Family: s.Family, Addr: s.Daddr, Port: s.Dport}
}
