package events

import (
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/ocigate/ocigate/internal/jsonstr"
)

// ErrTimeRange is the error when a time of the event is outside the years
// 0-9999, which JSON (RFC 3339) cannot hold; time.Time's MarshalJSON
// refuses it too.
var ErrTimeRange = errors.New("event time outside the years 0-9999")

// AppendJSON appends e's JSON encoding to b: byte for byte what
// encoding/json's Marshal gives (TestAppendJSONIsMarshal), without its
// reflection and allocations — the agent encodes every event with it.
// A field added to the types must be added here too; the test fills
// every field to catch one that is not.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	if !e.timesValid() {
		return b, ErrTimeRange
	}
	return e.appendJSON(b, nil), nil
}

func (e *Event) timesValid() bool {
	// A frozen process was encoded already: its start time is valid.
	ok := validTime(e.Time)
	for _, p := range []*Process{e.Process(), e.Parent()} {
		if p != nil && p.encoded == nil {
			ok = ok && validTime(p.StartTime)
		}
	}
	if e.ProcessExit != nil {
		ok = ok && validTime(e.ProcessExit.Time)
	}
	return ok
}

// The Unix seconds of 0000-01-01 and of 10000-01-01 (UTC).
const (
	minJSONUnix = -62167219200
	maxJSONUnix = 253402300800
)

// validTime: RFC 3339 holds the years 0-9999 of the time's own zone.
func validTime(t time.Time) bool {
	u := t.Unix()
	if u > minJSONUnix+86400 && u < maxJSONUnix-86400 {
		return true // whatever the zone's offset
	}
	y := t.Year()
	return y >= 0 && y <= 9999
}

// appendJSON appends e's encoding; c, when not nil, remembers what
// repeats (Encoder).
func (e *Event) appendJSON(b []byte, c *Encoder) []byte {
	b = append(b, '{')
	first := true
	if e.ProcessKprobe != nil {
		b = key(b, &first, "process_kprobe")
		b = e.ProcessKprobe.appendJSON(b)
	}
	if e.ProcessLsm != nil {
		b = key(b, &first, "process_lsm")
		b = e.ProcessLsm.appendJSON(b)
	}
	if e.ProcessTracepoint != nil {
		b = key(b, &first, "process_tracepoint")
		b = e.ProcessTracepoint.appendJSON(b)
	}
	if e.ProcessExec != nil {
		b = key(b, &first, "process_exec")
		b = e.ProcessExec.appendJSON(b)
	}
	if e.ProcessExit != nil {
		b = key(b, &first, "process_exit")
		b = e.ProcessExit.appendJSON(b)
	}
	if e.OcigateClaim != nil {
		b = key(b, &first, "ocigate_claim")
		b = e.OcigateClaim.appendJSON(b)
	}
	b = key(b, &first, "node_name")
	b = appendString(b, e.NodeName)
	b = key(b, &first, "time")
	b = c.appendTime(b, e.Time)
	if e.Ocigate != nil {
		b = key(b, &first, "ocigate")
		if c != nil {
			b = c.appendOcigate(b, e.Ocigate)
		} else {
			b = e.Ocigate.appendJSON(b)
		}
	}
	return append(b, '}')
}

// key appends a member name (and the comma before all but the first).
func key(b []byte, first *bool, name string) []byte {
	if !*first {
		b = append(b, ',')
	}
	*first = false
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// appendJSON appends k's JSON encoding.
func (k *Kprobe) appendJSON(b []byte) []byte {
	b = append(b, `{"process":`...)
	b = k.Process.appendJSON(b)
	if k.Parent != nil {
		b = append(b, `,"parent":`...)
		b = k.Parent.appendJSON(b)
	}
	b = appendOptString(b, `,"function_name":`, k.FunctionName)
	b = appendOptString(b, `,"subsys":`, k.Subsys)
	b = appendOptString(b, `,"event":`, k.Event)
	b = append(b, `,"args":`...)
	if k.Args == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range k.Args {
			if i > 0 {
				b = append(b, ',')
			}
			b = k.Args[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	if k.Return != nil {
		b = append(b, `,"return":`...)
		b = k.Return.appendJSON(b)
	}
	b = append(b, `,"action":`...)
	b = appendString(b, k.Action)
	b = appendOptString(b, `,"policy_name":`, k.PolicyName)
	b = appendOptString(b, `,"return_action":`, k.ReturnAction)
	b = appendOptString(b, `,"message":`, k.Message)
	if len(k.Tags) > 0 {
		b = append(b, `,"tags":[`...)
		for i, t := range k.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, t)
		}
		b = append(b, ']')
	}
	b = appendOptString(b, `,"ima_hash":`, k.ImaHash)
	b = appendStack(b, `,"kernel_stack_trace":`, k.KernelStackTrace)
	b = appendStack(b, `,"user_stack_trace":`, k.UserStackTrace)
	return append(b, '}')
}

// appendStack appends member and the frames unless there are none.
func appendStack(b []byte, member string, frames []StackTraceEntry) []byte {
	if len(frames) == 0 {
		return b
	}
	b = append(b, member...)
	b = append(b, '[')
	for i, f := range frames {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		first := true
		for _, n := range [2]struct {
			name string
			v    uint64
		}{{"address", f.Address}, {"offset", f.Offset}} {
			if n.v != 0 {
				b = key(b, &first, n.name)
				b = append(b, '"')
				b = strconv.AppendUint(b, n.v, 10)
				b = append(b, '"')
			}
		}
		if f.Symbol != "" {
			b = key(b, &first, "symbol")
			b = appendString(b, f.Symbol)
		}
		if f.Module != "" {
			b = key(b, &first, "module")
			b = appendString(b, f.Module)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendOptString appends member (`,"name":`) and s unless s is empty.
func appendOptString(b []byte, member, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, member...)
	return appendString(b, s)
}

func (x *Exec) appendJSON(b []byte) []byte {
	b = append(b, `{"process":`...)
	b = x.Process.appendJSON(b)
	if x.Parent != nil {
		b = append(b, `,"parent":`...)
		b = x.Parent.appendJSON(b)
	}
	return append(b, '}')
}

func (x *Exit) appendJSON(b []byte) []byte {
	b = append(b, `{"process":`...)
	b = x.Process.appendJSON(b)
	if x.Parent != nil {
		b = append(b, `,"parent":`...)
		b = x.Parent.appendJSON(b)
	}
	if x.Signal != "" {
		b = append(b, `,"signal":`...)
		b = appendString(b, x.Signal)
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendUint(b, uint64(x.Status), 10)
	b = append(b, `,"time":`...)
	b = appendTime(b, x.Time)
	return append(b, '}')
}

func (p *Process) appendJSON(b []byte) []byte {
	if p.encoded != nil {
		return append(b, p.encoded...)
	}
	return p.appendFields(b)
}

func (p *Process) appendFields(b []byte) []byte {
	b = append(b, '{')
	first := true
	if p.ExecID != "" {
		b = key(b, &first, "exec_id")
		b = appendString(b, p.ExecID)
	}
	b = key(b, &first, "pid")
	b = appendValue(b, p.Pid)
	b = append(b, `,"uid":`...)
	b = appendValue(b, p.UID)
	if p.Cwd != "" {
		b = append(b, `,"cwd":`...)
		b = appendString(b, p.Cwd)
	}
	b = append(b, `,"binary":`...)
	b = appendString(b, p.Binary)
	if p.Arguments != "" {
		b = append(b, `,"arguments":`...)
		b = appendString(b, p.Arguments)
	}
	if p.Flags != "" {
		b = append(b, `,"flags":`...)
		b = appendString(b, p.Flags)
	}
	if !p.StartTime.IsZero() {
		b = append(b, `,"start_time":`...)
		b = appendTime(b, p.StartTime)
	}
	if p.Pod != nil {
		b = append(b, `,"pod":`...)
		b = p.Pod.appendJSON(b)
	}
	if p.Docker != "" {
		b = append(b, `,"docker":`...)
		b = appendString(b, p.Docker)
	}
	if p.ParentExecID != "" {
		b = append(b, `,"parent_exec_id":`...)
		b = appendString(b, p.ParentExecID)
	}
	return append(b, '}')
}

func appendValue(b []byte, v Value) []byte {
	b = append(b, `{"value":`...)
	b = strconv.AppendUint(b, uint64(v.Value), 10)
	return append(b, '}')
}

func (p *Pod) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if p.Namespace != "" {
		b = append(b, `"namespace":`...)
		b = appendString(b, p.Namespace)
		b = append(b, ',')
	}
	if p.Name != "" {
		b = append(b, `"name":`...)
		b = appendString(b, p.Name)
		b = append(b, ',')
	}
	b = append(b, `"container":{"id":`...)
	b = appendString(b, p.Container.ID)
	if p.Container.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, p.Container.Name)
	}
	b = append(b, `,"image":{`...)
	if p.Container.Image.Name != "" {
		b = append(b, `"name":`...)
		b = appendString(b, p.Container.Image.Name)
	}
	b = append(b, "}}"...)
	if len(p.PodLabels) > 0 {
		b = append(b, `,"pod_labels":`...)
		b = appendStringMap(b, p.PodLabels)
	}
	if p.Workload != "" {
		b = append(b, `,"workload":`...)
		b = appendString(b, p.Workload)
	}
	if p.WorkloadKind != "" {
		b = append(b, `,"workload_kind":`...)
		b = appendString(b, p.WorkloadKind)
	}
	return append(b, '}')
}

// appendStringMap appends m as a JSON object, keys in order (as
// encoding/json writes maps).
func appendStringMap(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// AppendJSONTo appends a's JSON encoding to b (as encoding/json's
// Marshal gives it).
func (a *Arg) AppendJSONTo(b []byte) []byte { return a.appendJSON(b) }

// appendJSON appends a's JSON encoding.
func (a *Arg) appendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	if s := a.SockArg; s != nil {
		b = key(b, &first, "sock_arg")
		b = s.appendJSON(b)
	}
	if s := a.SockaddrArg; s != nil {
		b = key(b, &first, "sockaddr_arg")
		b = append(b, `{"family":`...)
		b = appendString(b, s.Family)
		b = append(b, `,"addr":`...)
		b = appendString(b, s.Addr)
		b = append(b, `,"port":`...)
		b = strconv.AppendUint(b, uint64(s.Port), 10)
		b = append(b, '}')
	}
	if s := a.SkbArg; s != nil {
		b = key(b, &first, "skb_arg")
		b = s.appendJSON(b)
	}
	if a.IntArg != nil {
		b = key(b, &first, "int_arg")
		b = append(b, `{"value":`...)
		b = strconv.AppendInt(b, a.IntArg.Value, 10)
		b = append(b, '}')
	}
	b = appendPathArg(b, &first, "file_arg", a.FileArg)
	b = appendPathArg(b, &first, "path_arg", a.PathArg)
	b = appendPathArg(b, &first, "linux_binprm_arg", a.LinuxBinprmArg)
	if a.StringArg != nil {
		b = key(b, &first, "string_arg")
		b = appendString(b, *a.StringArg)
	}
	if a.SyscallID != nil {
		b = key(b, &first, "syscall_id")
		b = append(b, `{"id":`...)
		b = strconv.AppendUint(b, uint64(a.SyscallID.ID), 10)
		b = append(b, `,"abi":`...)
		b = appendString(b, a.SyscallID.ABI)
		b = append(b, '}')
	}
	if a.NetDevArg != nil {
		b = key(b, &first, "net_dev_arg")
		b = append(b, `{"name":`...)
		b = appendString(b, a.NetDevArg.Name)
		b = append(b, '}')
	}
	if a.Label != "" {
		b = key(b, &first, "label")
		b = appendString(b, a.Label)
	}
	return append(b, '}')
}

// appendPathArg appends a file, path or linux_binprm argument, if set.
func appendPathArg(b []byte, first *bool, name string, f *FileArg) []byte {
	if f == nil {
		return b
	}
	b = key(b, first, name)
	b = append(b, `{"path":`...)
	b = appendString(b, f.Path)
	return append(b, '}')
}

// appendJSON appends s's JSON encoding.
func (s *SockArg) appendJSON(b []byte) []byte {
	b = append(b, `{"family":`...)
	b = appendString(b, s.Family)
	b = append(b, `,"type":`...)
	b = appendString(b, s.Type)
	b = append(b, `,"protocol":`...)
	b = appendString(b, s.Protocol)
	b = appendAddrs(b, s.Saddr, s.Daddr, s.Sport, s.Dport)
	b = appendOptString(b, `,"state":`, s.State)
	return append(b, '}')
}

// appendJSON appends s's JSON encoding.
func (s *SkbArg) appendJSON(b []byte) []byte {
	b = append(b, `{"family":`...)
	b = appendString(b, s.Family)
	b = append(b, `,"protocol":`...)
	b = appendString(b, s.Protocol)
	b = append(b, `,"proto":`...)
	b = strconv.AppendUint(b, uint64(s.Proto), 10)
	b = appendAddrs(b, s.Saddr, s.Daddr, s.Sport, s.Dport)
	return append(b, '}')
}

// appendAddrs appends the optional saddr, daddr, sport, dport members.
func appendAddrs(b []byte, saddr, daddr string, sport, dport uint32) []byte {
	b = appendOptString(b, `,"saddr":`, saddr)
	b = appendOptString(b, `,"daddr":`, daddr)
	if sport != 0 {
		b = append(b, `,"sport":`...)
		b = strconv.AppendUint(b, uint64(sport), 10)
	}
	if dport != 0 {
		b = append(b, `,"dport":`...)
		b = strconv.AppendUint(b, uint64(dport), 10)
	}
	return b
}

func (o *Ocigate) appendJSON(b []byte) []byte {
	b = append(b, `{"container_id":`...)
	b = appendString(b, o.ContainerID)
	if o.Runtime != "" {
		b = append(b, `,"runtime":`...)
		b = appendString(b, o.Runtime)
	}
	if o.Adopted {
		b = append(b, `,"adopted":true`...)
	}
	b = append(b, `,"profile":`...)
	b = appendString(b, o.Profile)
	b = append(b, `,"mode":`...)
	b = appendString(b, o.Mode)
	if o.Point != "" {
		b = append(b, `,"point":`...)
		b = appendString(b, o.Point)
	}
	b = append(b, `,"enforced":`...)
	b = strconv.AppendBool(b, o.Enforced)
	if o.Verdict != "" {
		b = append(b, `,"verdict":`...)
		b = appendString(b, o.Verdict)
	}
	if o.Errno != 0 {
		b = append(b, `,"errno":`...)
		b = strconv.AppendInt(b, int64(o.Errno), 10)
	}
	if o.Backend != "" {
		b = append(b, `,"backend":`...)
		b = appendString(b, o.Backend)
	}
	if o.Mechanism != "" {
		b = append(b, `,"mechanism":`...)
		b = appendString(b, o.Mechanism)
	}
	b = append(b, `,"cgroup_id":`...)
	b = strconv.AppendUint(b, o.CgroupID, 10)
	if o.Selector != nil {
		b = append(b, `,"selector":`...)
		b = strconv.AppendInt(b, int64(*o.Selector), 10)
	}
	if o.ParentOutside {
		b = append(b, `,"parent_outside_workload":true`...)
	}
	if o.CallerPid != 0 {
		b = append(b, `,"caller_pid":`...)
		b = strconv.AppendUint(b, uint64(o.CallerPid), 10)
	}
	if o.Relay != "" {
		b = append(b, `,"relay":`...)
		b = appendString(b, o.Relay)
	}
	if o.PeerPid != 0 {
		b = append(b, `,"peer_pid":`...)
		b = strconv.AppendUint(b, uint64(o.PeerPid), 10)
	}
	if len(o.StdioSockets) > 0 {
		b = append(b, `,"stdio_sockets":[`...)
		for i, fd := range o.StdioSockets {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(fd), 10)
		}
		b = append(b, ']')
	}
	b = appendOptString(b, `,"predicate":`, o.Predicate)
	b = appendOptString(b, `,"evidence":`, o.Evidence)
	b = appendOptString(b, `,"note":`, o.Note)
	return append(b, '}')
}

// appendTime is time.Time's MarshalJSON: RFC 3339 with nanoseconds.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString quotes s as encoding/json does (internal/jsonstr).
func appendString(b []byte, s string) []byte { return jsonstr.Append(b, s) }
