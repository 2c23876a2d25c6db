// Package proccache is the agent's bounded memory of workload processes:
// what each one runs, its exec_id and its parent, so that every event of
// a process names it the same way without reading /proc. One entry per
// process (thread group), replaced when the process execs; exited
// processes stay for a grace period, for events the kernel reported
// before the exit but the agent reads after it.
//
// A Cache is not safe for concurrent use: the agent's event reader owns
// it.
package proccache

import (
	"time"

	"github.com/ocigate/ocigate/internal/events"
)

// Entry is one process as the agent knows it. Process and Parent are
// shared with the events that name the process: they are not changed
// once the entry is in the cache.
//
// The cache holds tens of thousands: an Entry is kept at 256 bytes, a
// size class of the allocator (TestEntrySize), and an exited one is kept
// smaller still (gone).
type Entry struct {
	Tgid uint32
	// ParentOutside: the parent is not in the workload (the runtime).
	ParentOutside bool
	// StartNs is the thread group's start (CLOCK_BOOTTIME ns): with Tgid
	// the process's identity, the same across its execs.
	StartNs uint64
	// ExecNs, when not 0, says that Process.ExecID is the one its maker
	// makes of ExecNs and Tgid (SetExecID): an exited process is then
	// kept compact.
	ExecNs uint64
	// Process is the process as events report it; Parent its parent
	// when it started or exec'd (nil: unknown).
	Process events.Process
	Parent  *events.Process
	// Workload is the cgroup ID of its registered workload; Container
	// names it, for events that arrive after it was unregistered (nil:
	// none known).
	Workload  uint64
	Container *Container
	// Snapshot is a copy of Process made once, the Parent of its
	// children: processes that fork thousands share one. The agent sets
	// it; nil: none made yet.
	Snapshot *events.Process

	exitedNs   uint64 // when it exited (record time), 0: running
	prev, next *Entry // in the live LRU list or the exited list
}

// Container names a workload's container; the entries of its
// processes share one.
type Container struct {
	ID, Runtime string
	Workload    uint64 // the cgroup ID of the workload
}

// Exited reports whether the process's exit was seen.
func (e *Entry) Exited() bool { return e.exitedNs != 0 }

// list is an intrusive doubly linked list; head.next is the oldest.
type list struct{ head Entry }

func (l *list) init()          { l.head.next, l.head.prev = &l.head, &l.head }
func (l *list) empty() bool    { return l.head.next == &l.head }
func (l *list) oldest() *Entry { return l.head.next }

func (l *list) pushNewest(e *Entry) {
	e.prev, e.next = l.head.prev, &l.head
	l.head.prev.next = e
	l.head.prev = e
}

func unlink(e *Entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

// Stats count what the cache did.
type Stats struct {
	Entries   int
	Hits      uint64
	Misses    uint64
	Evicted   uint64 // removed to make room (live or exited within grace)
	Expired   uint64 // exited entries removed after the grace period
	Replaced  uint64 // a new process or exec replaced the entry of its pid
	Exits     uint64
	ExitsLost uint64 // exits of processes the cache did not hold
}

// Cache holds at most Max entries: running processes in LRU order and
// exited ones in the order they exited, compact (gone) where they can
// be.
type Cache struct {
	max      int
	grace    uint64
	byTgid   map[uint32]*Entry
	peak     int  // the most entries byTgid held since it was made
	live     list // least recently used first
	exited   list // first exited first
	gone     map[uint32]*gone
	gonePeak int
	goneList goneList // first exited first
	slab     []gone   // where newGone takes the next record
	execID   func(ns uint64, pid uint32) string
	flags    []string // the Process.Flags values gone entries name
	// startOffset is a gone's start time (unix ns) less its ExecNs, the
	// same for all (startKnown once the first is seen).
	startOffset int64
	startKnown  bool
	stats       Stats
}

// Defaults of New's arguments (zero values take them).
const (
	DefaultMax   = 65536
	DefaultGrace = 30 * time.Second
)

// New returns a cache of max entries (DefaultMax when 0) that keeps
// exited processes for grace (DefaultGrace when 0).
func New(max int, grace time.Duration) *Cache {
	if max <= 0 {
		max = DefaultMax
	}
	if grace <= 0 {
		grace = DefaultGrace
	}
	c := &Cache{max: max, grace: uint64(grace), byTgid: make(map[uint32]*Entry), gone: make(map[uint32]*gone)}
	c.live.init()
	c.exited.init()
	c.goneList.init()
	return c
}

// Put stores e as the current image of its process, replacing what the
// cache held for its pid. now is the time of the record it comes from
// (CLOCK_BOOTTIME ns), the cache's clock.
func (c *Cache) Put(e *Entry, now uint64) {
	c.expire(now)
	if old, ok := c.byTgid[e.Tgid]; ok {
		unlink(old)
		delete(c.byTgid, e.Tgid)
		c.stats.Replaced++
	} else if g, ok := c.gone[e.Tgid]; ok {
		c.removeGone(g)
		c.stats.Replaced++
	}
	for c.Len() >= c.max {
		c.evictOne()
	}
	e.exitedNs = 0
	c.byTgid[e.Tgid] = e
	c.peak = max(c.peak, len(c.byTgid))
	c.live.pushNewest(e)
}

// Get returns the entry of process tgid; startNs, when not 0, must be
// its start (a pid reused by another process is not it). A running
// process becomes the most recently used.
func (c *Cache) Get(tgid uint32, startNs uint64) (*Entry, bool) {
	e, ok := c.byTgid[tgid]
	if !ok {
		if g, ok := c.gone[tgid]; ok && (startNs == 0 || g.startNs == startNs) {
			c.stats.Hits++
			return c.entry(g), true
		}
	}
	if !ok || startNs != 0 && e.StartNs != startNs {
		c.stats.Misses++
		return nil, false
	}
	c.stats.Hits++
	if !e.Exited() {
		unlink(e)
		c.live.pushNewest(e)
	}
	return e, true
}

// Exit marks process tgid (started at startNs, 0: any) exited at now and
// returns its entry; it stays for the grace period, compact when it can
// be (the returned Entry is then the cache's no more).
func (c *Cache) Exit(tgid uint32, startNs, now uint64) (*Entry, bool) {
	c.expire(now)
	c.stats.Exits++
	e, ok := c.byTgid[tgid]
	if !ok {
		if g, ok := c.gone[tgid]; ok && (startNs == 0 || g.startNs == startNs) {
			return c.entry(g), true
		}
	}
	if !ok || startNs != 0 && e.StartNs != startNs {
		c.stats.ExitsLost++
		return nil, false
	}
	if e.Exited() {
		return e, true
	}
	unlink(e)
	e.exitedNs = max(now, 1)
	if g := c.compact(e); g != nil {
		delete(c.byTgid, tgid)
		c.shrink()
		c.gone[tgid] = g
		c.gonePeak = max(c.gonePeak, len(c.gone))
		c.goneList.pushNewest(g)
		return e, true
	}
	c.exited.pushNewest(e)
	return e, true
}

// expire removes the exited entries whose grace period is over.
func (c *Cache) expire(now uint64) {
	for !c.exited.empty() {
		e := c.exited.oldest()
		if e.exitedNs+c.grace > now {
			break
		}
		c.remove(e)
		c.stats.Expired++
	}
	for !c.goneList.empty() {
		g := c.goneList.oldest()
		if g.exitedNs+c.grace > now {
			return
		}
		c.removeGone(g)
		c.stats.Expired++
	}
}

// evictOne makes room: the process that exited first, else the least
// recently used running one.
func (c *Cache) evictOne() {
	c.stats.Evicted++
	switch {
	case !c.goneList.empty() && (c.exited.empty() || c.goneList.oldest().exitedNs <= c.exited.oldest().exitedNs):
		c.removeGone(c.goneList.oldest())
	case !c.exited.empty():
		c.remove(c.exited.oldest())
	default:
		c.remove(c.live.oldest())
	}
}

// removeGone forgets g and clears it: its slab may stay for others.
func (c *Cache) removeGone(g *gone) {
	g.unlink()
	delete(c.gone, g.tgid)
	*g = gone{}
	if n := len(c.gone); c.gonePeak >= shrinkMin && n < c.gonePeak/2 {
		m := make(map[uint32]*gone, n)
		for k, v := range c.gone {
			m[k] = v
		}
		c.gone, c.gonePeak = m, n
	}
}

func (c *Cache) remove(e *Entry) {
	unlink(e)
	if c.byTgid[e.Tgid] == e {
		delete(c.byTgid, e.Tgid)
	}
	c.shrink()
}

// shrinkMin is the map size below which shrink leaves it.
const shrinkMin = 4096

// shrink makes byTgid anew once it holds less than half of its peak: a
// Go map keeps the room of the most entries it ever held, and a burst
// of processes (a full cache) would otherwise hold it for good. Each
// rebuild follows at least as many removals as it copies entries.
func (c *Cache) shrink() {
	n := len(c.byTgid)
	if c.peak < shrinkMin || n >= c.peak/2 {
		return
	}
	m := make(map[uint32]*Entry, n)
	for k, v := range c.byTgid {
		m[k] = v
	}
	c.byTgid, c.peak = m, n
}

// Len is the number of entries.
func (c *Cache) Len() int { return len(c.byTgid) + len(c.gone) }

// Stats returns the counts so far.
func (c *Cache) Stats() Stats {
	s := c.stats
	s.Entries = c.Len()
	return s
}
