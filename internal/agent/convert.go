package agent

import (
	"sync"
	"time"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/proccache"
	"github.com/ocigate/ocigate/profiles"
)

var tetragonActions = map[profiles.Action]string{
	profiles.ActionPost:     events.ActionPost,
	profiles.ActionOverride: events.ActionOverride,
	profiles.ActionSigkill:  events.ActionSigkill,
	profiles.ActionSignal:   events.ActionSignal,
	// NotifyEnforcer: the refusal itself, as Tetragon's enforcer does it.
	profiles.ActionNotifyEnforcer: events.ActionNotifyEnforcer,
}

// kprobeAlloc holds the parts of one process_kprobe event, allocated
// together and recycled (events.Recycler) once the sink, the hub and
// the subscribers are done with it: the agent converts every decision
// it reads, and a new allocation each time costs more than the rest of
// the conversion, then the collector's time.
type kprobeAlloc struct {
	ev       events.Event
	kp       events.Kprobe
	og       events.Ocigate
	selector int
	space    argSpace
	sock     events.SockArg
}

var kprobeAllocs = sync.Pool{New: func() any { return new(kprobeAlloc) }}

// newKprobeAlloc is a cleared block, recycled when one is free.
func newKprobeAlloc() *kprobeAlloc {
	blk := kprobeAllocs.Get().(*kprobeAlloc)
	*blk = kprobeAlloc{}
	return blk
}

// Recycle takes ev, blk's event, back once nobody holds it.
func (blk *kprobeAlloc) Recycle(ev *events.Event) {
	if ev != &blk.ev {
		panic("kprobeAlloc: recycling another block's event")
	}
	kprobeAllocs.Put(blk)
}

// convert turns a kernel decision into a Tetragon-shaped event. The
// process and its parent come from the process cache; a process the
// cache does not know (it predates its workload's registration, or
// process events are off) is read from /proc.
func (a *Agent) convert(raw *record.RawEvent, at time.Time) *events.Event {
	blk := newKprobeAlloc()
	blk.selector = raw.Selector
	og, kp := &blk.og, &blk.kp
	*og = events.Ocigate{
		Point: raw.Point.String(), Enforced: raw.Enforced, Backend: raw.Backend,
		Mechanism: raw.Mechanism, CgroupID: raw.CgroupID, Selector: &blk.selector, Verdict: verdict(raw),
		Relay: raw.Relay.String(), PeerPid: raw.Peer,
	}
	kp.Action, kp.Args = tetragonActions[raw.Action], eventArgs(raw, blk)
	if raw.Action == profiles.ActionOverride && raw.Enforced {
		og.Errno = raw.Errno
	}
	hook := ""
	p, ok := a.profileByID(raw.Profile)
	if ok {
		og.Profile, og.Mode = p.Name, string(p.Mode)
		if sels := p.Points[raw.Point]; raw.Selector < len(sels) {
			hook = describeHook(raw, &sels[raw.Selector], kp, og, &blk.space)
		}
	}
	if kp.FunctionName == "" && kp.Subsys == "" {
		kp.FunctionName = raw.Point.String()
	}
	trackProcs := ok && !p.NoProcessEvents
	var e *proccache.Entry
	kp.Process, kp.Parent, og.ParentOutside, e = a.processFor(raw, trackProcs)
	if raw.Owner != 0 && raw.Owner != raw.Tgid {
		// TrackSock: the socket's creator is the event's process.
		og.CallerPid = raw.Tgid
		kp.Process, kp.Parent, og.ParentOutside = a.ownerProcess(raw)
	}
	if w, ok := a.eventWorkload(raw.WorkloadCgroupID); ok {
		og.ContainerID, og.Runtime = w.ContainerID, w.Runtime
		og.Adopted = w.Adopted
		if pod := a.pods.of(w, a.podMeta.Load()); kp.Process.Docker != w.ContainerID || kp.Process.Pod != pod {
			kp.Process.Thaw() // a cached process frozen in another workload
			kp.Process.Docker, kp.Process.Pod = w.ContainerID, pod
		}
	} else if e != nil && e.Workload == raw.WorkloadCgroupID && e.Container != nil {
		// Unregistered since: the container it was in.
		og.ContainerID, og.Runtime = e.Container.ID, e.Container.Runtime
	} else if kp.Process.Docker != "" || kp.Process.Pod != nil {
		kp.Process.Thaw()
		kp.Process.Docker, kp.Process.Pod = "", nil
	}
	blk.ev = events.Event{NodeName: a.node, Time: at, Ocigate: og}
	blk.ev.SetHook(hook, kp)
	blk.ev.Recyclable(blk)
	return &blk.ev
}

// processFor is the event's process and parent, and its cache entry
// when there is one.
func (a *Agent) processFor(raw *record.RawEvent, trackProcs bool) (events.Process, *events.Process, bool, *proccache.Entry) {
	if e, ok := a.cached(raw.Tgid, raw.StartNs); ok {
		return e.Process, e.Parent, e.ParentOutside, e
	}
	if trackProcs && !postExec(raw) && a.cloneOf(raw, raw.ParentStartNs) {
		e, _ := a.cached(raw.Tgid, raw.StartNs)
		return e.Process, e.Parent, e.ParentOutside, e
	}
	p, snap, live := a.unknownProcess(raw)
	ppid := raw.Ppid
	if ppid == 0 && live && trackProcs {
		ppid = snap.ppid
		if a.forkedFrom(raw, snap) {
			e, _ := a.cached(raw.Tgid, raw.StartNs)
			return e.Process, e.Parent, e.ParentOutside, e
		}
	}
	comm := "" // the record's parent comm is raw.Ppid's
	if ppid == raw.Ppid {
		comm = raw.AncestorComm[0]
	}
	parent, outside := a.parentOf(ppid, 0, raw.WorkloadCgroupID, raw.BootNs, comm)
	if parent != nil {
		p.ParentExecID = parent.ExecID
	}
	if !live || !trackProcs {
		return p, parent, outside, nil
	}
	// The kernel tells of its next exec and its exit: cache it, and its
	// next events need no /proc.
	e := &proccache.Entry{Tgid: raw.Tgid, StartNs: snap.startTicks * nsPerTick, Process: p, Parent: parent, ParentOutside: outside}
	if raw.StartNs != 0 {
		e.StartNs = raw.StartNs
	}
	a.setWorkload(e, raw.WorkloadCgroupID)
	a.put(e, raw.BootNs)
	return e.Process, e.Parent, outside, e
}

// forkedFrom reports whether the live process of raw (a record without
// its parent: not an exec's) is a child that has not exec'd of a cached
// process, /proc's parent, running the same program, and if so caches
// it as such (cloneOf).
func (a *Agent) forkedFrom(raw *record.RawEvent, snap procSnapshot) bool {
	pe, ok := a.procs.Get(snap.ppid, 0)
	if !ok || raw.StartNs == 0 || pe.Process.Binary != snap.binary {
		return false
	}
	r := *raw
	r.Ppid = snap.ppid
	return a.cloneOf(&r, pe.StartNs)
}

// postExec: the record's process already is the new image of an exec
// (sched_process_exec, the fallback's exec point and relays).
func postExec(raw *record.RawEvent) bool {
	return raw.Point == profiles.PointExec && raw.Backend == bpf.BackendFallback || raw.Point == profiles.PointRelay
}

// unknownProcess is what /proc and the record tell about a process the
// cache does not know; live says /proc had it.
func (a *Agent) unknownProcess(raw *record.RawEvent) (events.Process, procSnapshot, bool) {
	// At sched_process_exec (fallback) the process already is the new
	// image, maybe killed: the kernel's path stands. Everywhere else it is
	// still the caller, and /proc tells about it while it lives.
	// A relayed shell is decided at sched_process_exec too, or at its
	// peer's connect (then the agent kills it: /proc may be gone).
	postExec := postExec(raw)
	p := events.Process{Pid: events.Value{Value: raw.Tgid}, UID: events.Value{Value: raw.UID}}
	var snap procSnapshot
	live := false
	if !postExec {
		if snap, live = a.procfs.snapshot(raw.Tgid, raw.StartNs); live {
			p.Binary, p.Arguments, p.Cwd, p.Flags = snap.binary, snap.arguments, snap.cwd, flagProcFS
		}
	}
	start := raw.StartNs
	if start == 0 && live {
		start = snap.startTicks * nsPerTick
	}
	if start != 0 {
		p.ExecID, p.StartTime = a.execID(start, raw.Tgid), a.clock.wall(start)
	}
	if p.Binary == "" && (postExec || raw.Point != profiles.PointExec && raw.Point != profiles.PointRelay) {
		p.Binary = raw.Path
	}
	if p.Binary == "" {
		p.Binary = raw.Comm
	}
	if raw.Args != nil {
		// argv as the kernel read it from the new image
		p.Arguments = argsString(raw.Args, raw.ArgsCut)
	}
	return p, snap, live
}

// ownerProcess is the process that created a tracked socket (TrackSock).
func (a *Agent) ownerProcess(raw *record.RawEvent) (events.Process, *events.Process, bool) {
	if e, ok := a.cached(raw.Owner, 0); ok {
		return e.Process, e.Parent, e.ParentOutside
	}
	p := events.Process{Pid: events.Value{Value: raw.Owner}, UID: events.Value{Value: raw.UID}}
	s, ok := a.procfs.snapshot(raw.Owner, 0)
	if !ok {
		return p, nil, false
	}
	p.UID.Value, p.Binary, p.Arguments, p.Cwd, p.Flags = s.uid, s.binary, s.arguments, s.cwd, flagProcFS
	p.ExecID, p.StartTime = a.execID(s.startTicks*nsPerTick, raw.Owner), a.clock.wall(s.startTicks*nsPerTick)
	parent, outside := a.parentOf(s.ppid, 0, raw.WorkloadCgroupID, raw.BootNs, "")
	if parent != nil {
		p.ParentExecID = parent.ExecID
	}
	return p, parent, outside
}

func verdict(raw *record.RawEvent) string {
	switch {
	case raw.Killed || raw.KillPending && raw.Enforced:
		return "killed"
	case raw.Enforced:
		return "denied"
	case raw.Monitor:
		return "would-deny"
	}
	return "reported"
}

func eventArgs(raw *record.RawEvent, blk *kprobeAlloc) []events.Arg {
	if raw.Point == profiles.PointExec || raw.Point == profiles.PointRelay {
		path := raw.Path
		if path == "" {
			path = raw.Binary
		}
		args := []events.Arg{{FileArg: &events.FileArg{Path: path}}}
		for fd := 0; fd < 3; fd++ {
			if raw.StdioInet&(1<<fd) != 0 {
				args = append(args, events.Arg{IntArg: &events.IntArg{Value: int64(fd)}})
			}
		}
		return args
	}
	if raw.Point == profiles.PointMemfd {
		return []events.Arg{{FileArg: &events.FileArg{Path: "memfd:" + raw.Binary}}}
	}
	if raw.Point == profiles.PointDup {
		sp := &blk.space
		sp.ints[0], sp.ints[1] = events.IntArg{Value: int64(raw.OldFD)}, events.IntArg{Value: int64(raw.NewFD)}
		sp.args[0], sp.args[1] = events.Arg{IntArg: &sp.ints[0]}, events.Arg{IntArg: &sp.ints[1]}
		return sp.args[:2]
	}
	sa := &blk.sock
	*sa = events.SockArg{
		Family: events.FamilyName(raw.Family), Type: events.SockTypeName(raw.SockType),
		Protocol: events.ProtocolName(raw.Protocol),
	}
	if raw.HasAddr {
		sa.Daddr, sa.Dport = raw.Daddr.String(), uint32(raw.Dport)
	}
	if raw.Saddr.IsValid() {
		sa.Saddr, sa.Sport = raw.Saddr.String(), uint32(raw.Sport)
	}
	sa.State = events.StateName(raw.State)
	blk.space.args[0] = events.Arg{SockArg: sa}
	return blk.space.args[:1]
}
