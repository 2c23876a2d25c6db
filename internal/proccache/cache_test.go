package proccache

import (
	"fmt"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/ocigate/ocigate/internal/events"
)

const sec = uint64(time.Second)

func entry(tgid uint32, start uint64, binary string) *Entry {
	e := &Entry{Tgid: tgid, StartNs: start}
	e.Process.Binary = binary
	return e
}

func mustGet(t *testing.T, c *Cache, tgid uint32, start uint64, binary string) *Entry {
	t.Helper()
	e, ok := c.Get(tgid, start)
	if !ok || e.Process.Binary != binary {
		t.Fatalf("Get(%d, %d) = %+v, %v; want %s", tgid, start, e, ok, binary)
	}
	return e
}

func mustMiss(t *testing.T, c *Cache, tgid uint32, start uint64) {
	t.Helper()
	if e, ok := c.Get(tgid, start); ok {
		t.Fatalf("Get(%d, %d) = %+v; want a miss", tgid, start, e)
	}
}

func TestPutGetReplace(t *testing.T) {
	c := New(10, time.Second)
	c.Put(entry(100, 5, "/bin/sh"), 10)
	mustGet(t, c, 100, 5, "/bin/sh")
	mustGet(t, c, 100, 0, "/bin/sh") // start unknown: any
	mustMiss(t, c, 100, 6)           // the pid of another process
	mustMiss(t, c, 101, 0)
	// exec: the same process, another image
	c.Put(entry(100, 5, "/usr/bin/python3"), 11)
	mustGet(t, c, 100, 5, "/usr/bin/python3")
	if s := c.Stats(); s.Entries != 1 || s.Replaced != 1 || s.Hits != 3 || s.Misses != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// An exited process is found for the grace period, then expires.
func TestExitGrace(t *testing.T) {
	c := New(10, 2*time.Second)
	c.Put(entry(1, 1, "a"), 1)
	c.Put(entry(2, 2, "b"), 1)
	if _, ok := c.Exit(1, 7, 2*sec); ok {
		t.Fatal("exit of another process with the same pid accepted")
	}
	e, ok := c.Exit(1, 1, 2*sec)
	if !ok || !e.Exited() {
		t.Fatalf("exit: %+v %v", e, ok)
	}
	if _, ok := c.Exit(1, 1, 2*sec+1); !ok {
		t.Fatal("a second exit of the same process is not found")
	}
	c.Put(entry(3, 3, "c"), 3*sec) // within grace: still there
	mustGet(t, c, 1, 1, "a")
	c.Put(entry(4, 4, "d"), 4*sec) // 2s after the exit: gone
	mustMiss(t, c, 1, 0)
	mustGet(t, c, 2, 2, "b") // running processes do not expire
	if s := c.Stats(); s.Expired != 1 || s.Exits != 3 || s.ExitsLost != 1 || s.Entries != 3 {
		t.Fatalf("stats %+v", s)
	}
}

// Full, the cache drops the processes that exited first, then the least
// recently used running ones.
func TestEvictionOrder(t *testing.T) {
	c := New(3, time.Hour)
	c.Put(entry(1, 1, "a"), 1)
	c.Put(entry(2, 2, "b"), 2)
	c.Put(entry(3, 3, "c"), 3)
	c.Exit(3, 3, 4)
	c.Put(entry(4, 4, "d"), 5) // evicts the exited 3, not the older 1
	mustMiss(t, c, 3, 0)
	mustGet(t, c, 1, 1, "a")   // 1 is now the most recently used
	c.Put(entry(5, 5, "e"), 6) // evicts 2: least recently used
	mustMiss(t, c, 2, 0)
	mustGet(t, c, 1, 1, "a")
	mustGet(t, c, 4, 4, "d")
	mustGet(t, c, 5, 5, "e")
	if s := c.Stats(); s.Evicted != 2 || s.Entries != 3 {
		t.Fatalf("stats %+v", s)
	}
	// An exit of a pid that was reused: the new process is there.
	c.Put(entry(4, 40, "d2"), 7)
	if _, ok := c.Exit(4, 4, 8); ok {
		t.Fatal("the old process's exit hit the new one")
	}
	mustGet(t, c, 4, 40, "d2")
}

// Replacing an exited entry (a pid reused within the grace period) takes
// it off the exited list: it neither expires the new one nor leaks.
func TestReplaceExited(t *testing.T) {
	c := New(2, time.Second)
	c.Put(entry(1, 1, "a"), 1)
	c.Exit(1, 1, 2)
	c.Put(entry(1, 9, "new"), 3)
	c.Put(entry(2, 2, "b"), 4*sec) // the old exit's grace is over
	mustGet(t, c, 1, 9, "new")
	if !c.exited.empty() || c.Len() != 2 {
		t.Fatalf("exited list not empty or %d entries", c.Len())
	}
	for i := uint32(10); i < 1000; i++ { // churn stays bounded
		c.Put(entry(i, uint64(i), "x"), 5*sec)
		c.Exit(i, uint64(i), 5*sec)
	}
	if c.Len() > 2 {
		t.Fatalf("%d entries in a cache of 2", c.Len())
	}
}

func BenchmarkGet(b *testing.B) {
	c := New(0, 0)
	for i := uint32(1); i <= 1000; i++ {
		c.Put(entry(i, uint64(i), "x"), 1)
	}
	b.ReportAllocs()
	i := uint32(0)
	for b.Loop() {
		i = i%1000 + 1
		c.Get(i, uint64(i))
	}
}

// An Entry fills the allocator's 256-byte size class, not the 288 one:
// a field added must take the place of another.
func TestEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(Entry{}); n > 256 {
		t.Fatalf("an Entry is %d bytes, over 256", n)
	}
	if n := unsafe.Sizeof(gone{}); n > 128 {
		t.Fatalf("a gone is %d bytes, over 128", n)
	}
}

// After a burst, the cache's map is made anew at the size it holds:
// the entries stay, and the map's memory goes with the burst.
func TestShrinkAfterBurst(t *testing.T) {
	c := New(100000, time.Second)
	const burst = 40000
	for i := uint32(1); i <= burst; i++ {
		c.Put(&Entry{Tgid: i, StartNs: uint64(i)}, 1)
	}
	for i := uint32(1); i <= burst-1000; i++ {
		c.Exit(i, uint64(i), 2)
	}
	before := c.byTgid
	c.Put(&Entry{Tgid: burst + 1, StartNs: 1}, 2+uint64(2*time.Second)) // expires the exited ones
	if c.Len() != 1001 {
		t.Fatalf("%d entries, want 1001", c.Len())
	}
	if c.peak > max(2*c.Len(), shrinkMin) || reflect.ValueOf(c.byTgid).UnsafePointer() == reflect.ValueOf(before).UnsafePointer() {
		t.Fatalf("map not made anew: peak %d for %d entries", c.peak, c.Len())
	}
	for i := uint32(burst - 999); i <= burst+1; i++ {
		if _, ok := c.Get(i, 0); !ok {
			t.Fatalf("process %d lost in the rebuild", i)
		}
	}
}

// An exited process is kept compact (gone) and made again exactly: every
// field of its Process, its parent and container, its exit.
func TestExitedCompact(t *testing.T) {
	c := New(10, 2*time.Second)
	execID := func(ns uint64, pid uint32) string { return fmt.Sprintf("node:%d:%d", ns, pid) }
	c.SetExecID(execID)
	parent := &events.Process{ExecID: "node:1:1", Binary: "/bin/sh"}
	ct := &Container{ID: "c1", Runtime: "runc", Workload: 42}
	pod := &events.Pod{Name: "p"}
	e := &Entry{Tgid: 7, StartNs: 5, ExecNs: 6, Parent: parent, Workload: 42, Container: ct, ParentOutside: true}
	e.Process = events.Process{ExecID: execID(6, 7), Pid: events.Value{Value: 7}, UID: events.Value{Value: 1000}, Cwd: "/tmp",
		Binary: "/bin/true", Arguments: "-x y", Flags: "execve", StartTime: time.Unix(0, 123456789).UTC(), Pod: pod,
		Docker: "c1", ParentExecID: "node:1:1"}
	want := *e
	c.Put(e, 1)
	if _, ok := c.Exit(7, 5, 2*sec); !ok {
		t.Fatal("exit lost")
	}
	if len(c.gone) != 1 || len(c.byTgid) != 0 || c.Len() != 1 {
		t.Fatalf("exited entry not kept compact: %d gone, %d entries", len(c.gone), len(c.byTgid))
	}
	got := mustGet(t, c, 7, 5, "/bin/true")
	want.exitedNs, want.prev, want.next = 2*sec, nil, nil
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("made again:\n%+v\nwant\n%+v", *got, want)
	}
	mustMiss(t, c, 7, 9)
	// A new process of the pid replaces it (its record cleared, for its
	// slab holds nothing of it); the grace period expires it.
	g := c.gone[7]
	c.Put(entry(7, 9, "/bin/ls"), 3*sec)
	if *g != (gone{}) {
		t.Fatalf("a replaced record still holds %+v", *g)
	}
	mustGet(t, c, 7, 9, "/bin/ls")
	if _, ok := c.Exit(7, 9, 3*sec); !ok || c.Len() != 1 {
		t.Fatalf("exit of the new process: %d entries", c.Len())
	}
	c.Put(entry(8, 1, "a"), 6*sec)
	mustMiss(t, c, 7, 0)
	if s := c.Stats(); s.Entries != 1 || s.Expired != 1 || s.Replaced != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// An entry whose fields a gone cannot make again keeps its whole Entry.
func TestExitedNotCompact(t *testing.T) {
	c := New(10, 2*time.Second)
	c.SetExecID(func(ns uint64, pid uint32) string { return "x" })
	e := entry(7, 5, "/bin/true")
	e.ExecNs = 6
	e.Process.ExecID, e.Process.Pid.Value, e.Process.Docker = "x", 7, "not its container"
	c.Put(e, 1)
	c.Exit(7, 5, 2*sec)
	if len(c.gone) != 0 || mustGet(t, c, 7, 5, "/bin/true") != e {
		t.Fatal("an entry that a gone cannot make again was made compact")
	}
	// Start times: the first sets the offset from ExecNs; another
	// offset is not made again.
	for i, start := range []int64{1006, 2008, 1009} {
		e := entry(uint32(10+i), 5, "/bin/true")
		e.ExecNs = uint64(6 + i)
		e.Process.ExecID, e.Process.Pid.Value, e.Process.StartTime = "x", uint32(10+i), time.Unix(0, start).UTC()
		c.Put(e, 1)
		c.Exit(uint32(10+i), 5, 2*sec)
		if _, compact := c.gone[uint32(10+i)]; compact != (start-int64(e.ExecNs) == 1000) {
			t.Fatalf("start %d, exec at %d: compact %v", start, e.ExecNs, compact)
		}
	}
}
