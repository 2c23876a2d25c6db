package agent

import (
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/proccache"
	"github.com/ocigate/ocigate/internal/workload"
)

// Process flags, as Tetragon's: how the agent learned of a process.
const (
	flagExecve = "execve" // its exec was seen
	flagClone  = "clone"  // forked; no exec seen since
	flagProcFS = "procFS" // read from /proc: it started before it was tracked
)

// execID names one program run of one process, in Tetragon's form: the
// base64 of "NODE:NS:PID", where NS is the CLOCK_BOOTTIME ns of the exec
// when the agent saw it, else of the process's start (the fork, or the
// start /proc or the kernel tells for a process that predates tracking).
// Every event of the process carries the same one; an exec gives the
// process a new one.
func (a *Agent) execID(ns uint64, pid uint32) string {
	b := make([]byte, 0, len(a.node)+32)
	b = append(b, a.node...)
	b = append(b, ':')
	b = strconv.AppendUint(b, ns, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(pid), 10)
	return base64.StdEncoding.EncodeToString(b)
}

// onRecord handles a process record of the kernel: the cache learns of
// the process, and an exec or exit becomes an event (nil for a clone).
func (a *Agent) onRecord(raw *record.RawEvent, at time.Time) *events.Event {
	switch raw.Kind {
	case record.KindExec:
		return a.onExec(raw, at)
	case record.KindClone:
		a.onClone(raw)
	case record.KindExit:
		return a.onExit(raw, at)
	}
	return nil
}

// onExec: a workload process runs a new program. Its parent is the
// process's previous program when it had exec'd before (as Tetragon
// has it), else its real parent.
func (a *Agent) onExec(raw *record.RawEvent, at time.Time) *events.Event {
	e := &proccache.Entry{Tgid: raw.Tgid, StartNs: raw.StartNs}
	a.setWorkload(e, raw.WorkloadCgroupID)
	p := &e.Process
	p.ExecID, e.ExecNs = a.execID(raw.BootNs, raw.Tgid), raw.BootNs
	p.Pid.Value, p.UID.Value = raw.Tgid, raw.UID
	p.Binary = raw.Path
	if p.Binary == "" {
		p.Binary = raw.Comm
	}
	p.Arguments = argsString(raw.Args, raw.ArgsCut)
	p.Flags = flagExecve
	p.StartTime = a.clock.wall(raw.BootNs)
	// The cwd, when the pid is still this process after it was read (a
	// process gone, /bin/true, costs one failed readlink).
	if cwd := a.procfs.cwd(raw.Tgid); cwd != "" && a.procfs.sameProcess(raw.Tgid, raw.StartNs) {
		p.Cwd = cwd
	}
	if prev, ok := a.cached(raw.Tgid, raw.StartNs); ok && prev.Process.Flags != flagClone {
		e.Parent = parentSnapshot(prev)
	} else {
		e.Parent, e.ParentOutside = a.parentOf(raw.Ppid, raw.ParentStartNs, raw.WorkloadCgroupID, raw.BootNs, raw.AncestorComm[0])
	}
	if e.Parent != nil {
		p.ParentExecID = e.Parent.ExecID
	}
	a.put(e, raw.BootNs)
	blk := execAllocs.Get().(*execAlloc)
	*blk = execAlloc{exec: events.Exec{Process: e.Process, Parent: e.Parent}}
	blk.ev.ProcessExec = &blk.exec
	return procEvent(a, raw, e, at, &blk.ev, &blk.og, blk)
}

// onClone: a workload process forked. The child runs its parent's
// program under an exec_id of its own until it execs. Most children
// exec at once, so its entry is cached unfrozen: it is encoded when an
// event first names it (cached), not for nothing at each fork.
func (a *Agent) onClone(raw *record.RawEvent) {
	e := &proccache.Entry{Tgid: raw.Tgid, StartNs: raw.StartNs}
	if pe, ok := a.cached(raw.Ppid, raw.ParentStartNs); ok {
		e.Process = pe.Process
		e.Process.Thaw() // the parent's encoding, not the child's
		e.Parent = parentSnapshot(pe)
		e.Workload, e.Container = pe.Workload, pe.Container
	} else {
		a.setWorkload(e, raw.WorkloadCgroupID)
		e.Process.Binary = raw.Path
		e.Parent, e.ParentOutside = a.parentOf(raw.Ppid, raw.ParentStartNs, raw.WorkloadCgroupID, raw.BootNs, raw.AncestorComm[0])
	}
	p := &e.Process
	p.ExecID, e.ExecNs = a.execID(raw.StartNs, raw.Tgid), raw.StartNs
	p.Pid.Value, p.UID.Value = raw.Tgid, raw.UID
	p.Flags = flagClone
	p.StartTime = a.clock.wall(raw.StartNs)
	p.ParentExecID = ""
	if e.Parent != nil {
		p.ParentExecID = e.Parent.ExecID
		freeze(e.Parent)
	}
	a.procs.Put(e, raw.BootNs)
}

// cloneOf caches the entry that the process of raw, unknown to the
// cache, would have from its clone record, and reports whether it
// could: a fork that execs at once needs no record of its own, so the
// kernel sends none (track_fork), and a child that has not exec'd is
// made from its parent (started at parentStartNs, 0: any) when an event
// or its exit first names it. The parent must be cached, in the same
// workload; its program is the one it runs now, which is the one the
// child runs unless the parent exec'd after the fork (or, for an
// orphan's exit, the parent is the one it was given).
func (a *Agent) cloneOf(raw *record.RawEvent, parentStartNs uint64) bool {
	if raw.StartNs == 0 || raw.Ppid == 0 || raw.Ppid == raw.Tgid {
		return false
	}
	pe, ok := a.procs.Get(raw.Ppid, parentStartNs)
	if !ok || pe.Workload != raw.WorkloadCgroupID || raw.WorkloadCgroupID == 0 {
		return false
	}
	a.onClone(&record.RawEvent{Kind: record.KindClone, BootNs: raw.BootNs, CgroupID: raw.CgroupID, WorkloadCgroupID: raw.WorkloadCgroupID,
		Pid: raw.Tgid, Tgid: raw.Tgid, Ppid: raw.Ppid, UID: raw.UID, StartNs: raw.StartNs, ParentStartNs: pe.StartNs})
	return true
}

// cached is the cache's entry of a process, frozen (its JSON made once,
// for every event that names it) if it was not yet: onClone leaves its
// entries unfrozen. Only the event reader, which owns the cache, freezes
// them; events hold copies.
func (a *Agent) cached(tgid uint32, startNs uint64) (*proccache.Entry, bool) {
	e, ok := a.procs.Get(tgid, startNs)
	if ok && !e.Process.Frozen() {
		e.Process.Freeze()
	}
	return e, ok
}

// onExit: the last thread of a workload process left.
func (a *Agent) onExit(raw *record.RawEvent, at time.Time) *events.Event {
	e, ok := a.procs.Exit(raw.Tgid, raw.StartNs, raw.BootNs)
	if !ok && a.cloneOf(raw, raw.ParentStartNs) {
		e, ok = a.procs.Exit(raw.Tgid, raw.StartNs, raw.BootNs)
	}
	if !ok {
		// Not known (it started before the agent): what the kernel says.
		e = &proccache.Entry{Tgid: raw.Tgid, StartNs: raw.StartNs}
		a.setWorkload(e, raw.WorkloadCgroupID)
		e.Process.ExecID = a.execID(raw.StartNs, raw.Tgid)
		e.Process.Pid.Value, e.Process.UID.Value = raw.Tgid, raw.UID
		e.Process.Binary = raw.Path
		e.Process.StartTime = a.clock.wall(raw.StartNs)
	}
	blk := exitAllocs.Get().(*exitAlloc)
	*blk = exitAlloc{}
	x := &blk.exit
	*x = events.Exit{Process: e.Process, Parent: e.Parent, Time: at}
	// An exited process stays for the grace period, for late events
	// only: its encoding goes (the exit event holds it until written;
	// a late event makes it again), and so does its children's parent.
	e.Process.Thaw()
	e.Snapshot = nil
	// The wait status: (exit code << 8) | signal, as Tetragon reads it.
	x.Status = raw.ExitCode >> 8 & 0xff
	if sig := raw.ExitCode & 0x7f; sig != 0 {
		x.Signal = unix.SignalName(unix.Signal(sig))
		if x.Signal == "" {
			x.Signal = "SIG" + strconv.Itoa(int(sig))
		}
	}
	blk.ev.ProcessExit = x
	return procEvent(a, raw, e, at, &blk.ev, &blk.og, blk)
}

// execAlloc and exitAlloc hold the parts of one process_exec or
// process_exit event, allocated together and recycled as kprobeAlloc's
// are: a fork+exec+exit makes one of each. Each holds only its own
// kind: the hub keeps the last thousand events.
type (
	execAlloc struct {
		ev   events.Event
		og   events.Ocigate
		exec events.Exec
	}
	exitAlloc struct {
		ev   events.Event
		og   events.Ocigate
		exit events.Exit
	}
)

var (
	execAllocs = sync.Pool{New: func() any { return new(execAlloc) }}
	exitAllocs = sync.Pool{New: func() any { return new(exitAlloc) }}
)

// Recycle takes ev, blk's event, back once nobody holds it.
func (blk *execAlloc) Recycle(ev *events.Event) {
	if ev != &blk.ev {
		panic("execAlloc: recycling another block's event")
	}
	execAllocs.Put(blk)
}

// Recycle takes ev, blk's event, back once nobody holds it.
func (blk *exitAlloc) Recycle(ev *events.Event) {
	if ev != &blk.ev {
		panic("exitAlloc: recycling another block's event")
	}
	exitAllocs.Put(blk)
}

// procEvent completes ev, a block's event whose exec or exit is filled
// in, about process entry e: og is the block's, r the block.
func procEvent(a *Agent, raw *record.RawEvent, e *proccache.Entry, at time.Time, ev *events.Event, og *events.Ocigate,
	r events.Recycler) *events.Event {
	a.processOcigate(og, raw, e)
	ev.NodeName, ev.Time, ev.Ocigate = a.node, at, og
	ev.Recyclable(r)
	return ev
}

// parentOf is the parent process ppid (started at startNs): from the
// cache, else read from /proc and, when it is in the workload, cached.
// outside says it is not in the workload: the container's runtime. A
// parent gone from /proc too is named by comm, its task name as the
// kernel's record gave it ("" if none).
func (a *Agent) parentOf(ppid uint32, startNs, workloadCgroup, now uint64, comm string) (*events.Process, bool) {
	if ppid == 0 {
		return nil, false
	}
	if pe, ok := a.cached(ppid, startNs); ok {
		return parentSnapshot(pe), false // the cache holds workload processes only
	}
	p := &events.Process{ExecID: a.execID(startNs, ppid), Pid: events.Value{Value: ppid}}
	if startNs != 0 {
		p.StartTime = a.clock.wall(startNs)
	}
	s, ok := a.procfs.snapshot(ppid, startNs)
	if !ok {
		p.Binary = comm // gone: its pid, start and task name are all there is
		return p, false
	}
	if startNs == 0 {
		p.ExecID = a.execID(s.startTicks*nsPerTick, ppid)
		p.StartTime = a.clock.wall(s.startTicks * nsPerTick)
	}
	p.UID.Value, p.Binary, p.Arguments, p.Cwd, p.Flags = s.uid, s.binary, s.arguments, s.cwd, flagProcFS
	cg, err := a.resolver.CgroupPath(int(ppid))
	if err != nil || !a.inWorkload(cg, workloadCgroup) {
		return p, true
	}
	e := &proccache.Entry{Tgid: ppid, StartNs: startNs, Process: *p}
	if startNs == 0 {
		e.StartNs = s.startTicks * nsPerTick
	}
	e.ExecNs = e.StartNs // p.ExecID's
	a.setWorkload(e, workloadCgroup)
	// Its own parent, as far as the cache knows it (not read further).
	if gp, ok := a.cached(s.ppid, 0); ok {
		e.Parent = parentSnapshot(gp)
		e.Process.ParentExecID = gp.Process.ExecID
	}
	a.put(e, now)
	return parentSnapshot(e), false
}

// put caches e with its process and parent frozen: their JSON is made
// once, for every event that names them.
func (a *Agent) put(e *proccache.Entry, now uint64) {
	e.Process.Freeze()
	if e.Parent != nil {
		freeze(e.Parent)
	}
	a.procs.Put(e, now)
}

// freeze freezes a parent unless it is: a parent is a snapshot, an
// unchanged copy of a cached process, whose encoding holds.
func freeze(p *events.Process) {
	if !p.Frozen() {
		p.Freeze()
	}
}

// setWorkload records the workload's container in e.
func (a *Agent) setWorkload(e *proccache.Entry, workloadCgroup uint64) {
	e.Workload = workloadCgroup
	w, ok := a.eventWorkload(workloadCgroup)
	if !ok {
		return
	}
	e.Container = a.containers.of(w)
	e.Process.Docker = w.ContainerID
	e.Process.Pod = a.pods.of(w, a.podMeta.Load())
}

// processOcigate fills og, the ocigate object of a process event: the
// workload, its profile and mode (enforce or monitor), and the exec
// point's backend. Enforced is false: a process event carries out no
// verdict (`.ocigate.enforced == true` selects the enforced decisions).
func (a *Agent) processOcigate(og *events.Ocigate, raw *record.RawEvent, e *proccache.Entry) {
	*og = events.Ocigate{CgroupID: raw.CgroupID, ParentOutside: e.ParentOutside, Backend: a.execBackend}
	if w, ok := a.eventWorkload(raw.WorkloadCgroupID); ok {
		og.ContainerID, og.Runtime = w.ContainerID, w.Runtime
	} else if e.Container != nil {
		og.ContainerID, og.Runtime = e.Container.ID, e.Container.Runtime
	}
	if p, ok := a.profileByID(raw.Profile); ok {
		og.Profile, og.Mode = p.Name, string(p.Mode)
	}
}

// parentSnapshot is the snapshot of a cached (frozen) process that its
// children name as their parent, made once and shared: a cache full of
// one shell's children holds one copy of the shell, not one each.
func parentSnapshot(e *proccache.Entry) *events.Process {
	if e.Snapshot == nil {
		e.Snapshot = snapshot(&e.Process)
	}
	return e.Snapshot
}

// snapshot copies a process for another's parent: the copy holds no
// pointer to the cache entry, so an exited parent's entry can go.
func snapshot(p *events.Process) *events.Process {
	c := *p
	return &c
}

// argsString is argv without argv[0], joined by spaces, "..." when the
// kernel cut it.
func argsString(args []string, cut bool) string {
	if len(args) < 2 {
		return ""
	}
	s := strings.Join(args[1:], " ")
	if cut {
		s += "..."
	}
	return s
}

// containerCache makes each workload's proccache.Container once, for
// the cache entries of its processes to share.
type containerCache struct {
	m map[*workload.Workload]*proccache.Container
}

func (c *containerCache) of(w *workload.Workload) *proccache.Container {
	if ct, ok := c.m[w]; ok {
		return ct
	}
	if c.m == nil || len(c.m) >= podCacheMax {
		c.m = make(map[*workload.Workload]*proccache.Container)
	}
	ct := &proccache.Container{ID: w.ContainerID, Runtime: w.Runtime, Workload: w.CgroupID}
	c.m[w] = ct
	return ct
}

// podCache builds each workload's pod object once: workloads are
// replaced, not changed, when they change.
type podCache struct {
	m     map[*workload.Workload]*events.Pod
	table *podTable // the pod table the cached objects were made with
}

// podCacheMax bounds the pods kept; full, it starts over.
const podCacheMax = 4096

func (c *podCache) of(w *workload.Workload, table *podTable) *events.Pod {
	if table != c.table { // a new pod table: labels may have changed
		c.m, c.table = nil, table
	}
	if p, ok := c.m[w]; ok {
		return p
	}
	if c.m == nil || len(c.m) >= podCacheMax {
		c.m = make(map[*workload.Workload]*events.Pod)
	}
	p := withMeta(podOf(w), w, table)
	c.m[w] = p
	return p
}

// podOf is the pod object of a workload: what its registration says,
// its annotations or the runtime's records (identify fills the image,
// names and pod in at registration), and nothing else.
func podOf(w *workload.Workload) *events.Pod {
	return &events.Pod{
		Namespace: w.PodNamespace,
		Name:      w.Pod,
		Container: events.Container{ID: w.ContainerID, Name: w.Name, Image: events.Image{Name: w.Image}},
	}
}
