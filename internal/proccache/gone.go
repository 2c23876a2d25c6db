package proccache

import (
	"time"

	"github.com/ocigate/ocigate/internal/events"
)

// gone is an exited process kept for its grace period in a compact form:
// what its Entry says, without what can be made again from the rest (its
// exec_id from ExecNs, its start time, pid, docker and parent_exec_id
// fields, its workload from its container, its frozen encoding and
// snapshot). A full cache is mostly exited processes: each costs 128
// bytes here, against an Entry's 256 and its exec_id's 48.
type gone struct {
	tgid, uid     uint32
	flag          uint8 // index in Cache.flags
	parentOutside bool
	hasStart      bool // Process.StartTime is ExecNs's (Cache.startOffset)
	startNs       uint64
	exitedNs      uint64
	execNs        uint64
	cwd, binary   string
	arguments     string
	pod           *events.Pod
	parent        *events.Process
	container     *Container
	prev, next    *gone
}

// goneList is an intrusive doubly linked list; head.next is the oldest.
type goneList struct{ head gone }

func (l *goneList) init()         { l.head.next, l.head.prev = &l.head, &l.head }
func (l *goneList) empty() bool   { return l.head.next == &l.head }
func (l *goneList) oldest() *gone { return l.head.next }

func (l *goneList) pushNewest(g *gone) {
	g.prev, g.next = l.head.prev, &l.head
	l.head.prev.next = g
	l.head.prev = g
}

func (g *gone) unlink() {
	g.prev.next, g.next.prev = g.next, g.prev
	g.prev, g.next = nil, nil
}

// SetExecID lets the cache keep exited processes compact: execID makes
// a process's exec_id from its Entry's ExecNs and Tgid, as the entry's
// maker did. Without it, exited processes keep their whole Entry.
func (c *Cache) SetExecID(execID func(ns uint64, pid uint32) string) { c.execID = execID }

// maxFlags bounds the distinct Process.Flags values kept compact.
const maxFlags = 16

// compact is e as a gone, or nil when e holds what a gone cannot make
// again exactly (an exec_id or start time of another form, fields that
// disagree with the rest).
func (c *Cache) compact(e *Entry) *gone {
	p := &e.Process
	if c.execID == nil || e.ExecNs == 0 || p.Pid.Value != e.Tgid || p.Docker != dockerOf(e.Container) ||
		p.ParentExecID != parentExecID(e.Parent) || p.ExecID == "" || e.Workload != workloadOf(e.Container) {
		return nil
	}
	hasStart := !p.StartTime.IsZero()
	if hasStart && !c.startOf(p.StartTime, e.ExecNs) {
		return nil
	}
	flag, ok := c.flagIndex(p.Flags)
	if !ok {
		return nil
	}
	g := c.newGone()
	*g = gone{tgid: e.Tgid, uid: p.UID.Value, flag: flag, parentOutside: e.ParentOutside, hasStart: hasStart, startNs: e.StartNs,
		exitedNs: e.exitedNs, execNs: e.ExecNs, cwd: p.Cwd, binary: p.Binary, arguments: p.Arguments, pod: p.Pod, parent: e.Parent,
		container: e.Container}
	return g
}

// goneSlab is how many gone records are allocated at once: they go
// mostly in the order they came (expired, evicted), so a slab is
// garbage soon after its last one, and a fork+exec+exit allocates one
// object less. 31, not 32: with the allocator's 8-byte header of a
// large object with pointers, 31 fill the 4096-byte size class.
const goneSlab = 31

// newGone is a cleared record from the cache's slab.
func (c *Cache) newGone() *gone {
	if len(c.slab) == 0 {
		c.slab = make([]gone, goneSlab)
	}
	g := &c.slab[0]
	c.slab = c.slab[1:]
	return g
}

// startOf reports whether start is execNs's wall time as the cache
// knows it, startOffset after execNs (UTC): the agent makes both of one
// clock reading. The first start it sees sets startOffset.
func (c *Cache) startOf(start time.Time, execNs uint64) bool {
	if start.Location() != time.UTC || !time.Unix(0, start.UnixNano()).UTC().Equal(start) {
		return false
	}
	off := start.UnixNano() - int64(execNs)
	if !c.startKnown {
		c.startOffset, c.startKnown = off, true
	}
	return off == c.startOffset
}

// flagIndex is the index of flags in c.flags, added when new.
func (c *Cache) flagIndex(flags string) (uint8, bool) {
	for i, f := range c.flags {
		if f == flags {
			return uint8(i), true
		}
	}
	if len(c.flags) >= maxFlags {
		return 0, false
	}
	c.flags = append(c.flags, flags)
	return uint8(len(c.flags) - 1), true
}

// entry makes g's Entry again, exited, in no list: the cache keeps g.
func (c *Cache) entry(g *gone) *Entry {
	e := &Entry{Tgid: g.tgid, ParentOutside: g.parentOutside, StartNs: g.startNs, ExecNs: g.execNs, Parent: g.parent,
		Workload: workloadOf(g.container), Container: g.container, exitedNs: g.exitedNs}
	e.Process = events.Process{ExecID: c.execID(g.execNs, g.tgid), Pid: events.Value{Value: g.tgid}, UID: events.Value{Value: g.uid},
		Cwd: g.cwd, Binary: g.binary, Arguments: g.arguments, Flags: c.flags[g.flag], Pod: g.pod,
		Docker: dockerOf(g.container), ParentExecID: parentExecID(g.parent)}
	if g.hasStart {
		e.Process.StartTime = time.Unix(0, int64(g.execNs)+c.startOffset).UTC()
	}
	return e
}

func dockerOf(c *Container) string {
	if c == nil {
		return ""
	}
	return c.ID
}

func workloadOf(c *Container) uint64 {
	if c == nil {
		return 0
	}
	return c.Workload
}

func parentExecID(p *events.Process) string {
	if p == nil {
		return ""
	}
	return p.ExecID
}
