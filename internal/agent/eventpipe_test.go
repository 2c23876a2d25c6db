package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/profiles"
)

// fakeSource replays records, then blocks until closed (or, with
// drain, reports itself closed).
type fakeSource struct {
	mu     sync.Mutex
	items  []any // *record.RawEvent or error
	drain  bool
	closed chan struct{}
	once   sync.Once
}

func newFakeSource(items ...any) *fakeSource {
	return &fakeSource{items: items, closed: make(chan struct{})}
}

func (s *fakeSource) ReadInto(raw *record.RawEvent) error {
	s.mu.Lock()
	if len(s.items) > 0 {
		it := s.items[0]
		s.items = s.items[1:]
		s.mu.Unlock()
		if err, ok := it.(error); ok {
			return err
		}
		*raw = *it.(*record.RawEvent)
		return nil
	}
	s.mu.Unlock()
	if !s.drain {
		<-s.closed
	}
	return record.ErrClosed
}

func (s *fakeSource) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunEvents(t *testing.T) {
	a, cg := convertFixture(t)
	src := newFakeSource(connectRaw(cg), errors.New("short record"), execRaw(cg))
	src.drain = true
	var out syncBuffer
	a.RunEvents(context.Background(), src, events.NewWriter(&out)) // returns after flushing
	var got []events.Event
	sc := bufio.NewScanner(bytes.NewReader([]byte(out.String())))
	for sc.Scan() {
		var ev events.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, ev)
	}
	if len(got) != 2 || got[0].Ocigate.Point != "connect" || got[1].Ocigate.Point != "exec" {
		t.Fatalf("written events %+v", got)
	}
	st := a.Stats()
	if st.EventsWritten.Load() != 2 || st.EventErrors.Load() != 1 || st.EventsDropped.Load() != 0 {
		t.Fatalf("stats %v", st.Map())
	}
	// BootNs 1 is the moment of boot: now minus the uptime.
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	boot := time.Now().Add(-time.Duration(ts.Nano()))
	if d := got[0].Time.Sub(boot); d < -time.Second || d > time.Second {
		t.Fatalf("event time %v, boot at %v", got[0].Time, boot)
	}
}

func TestRunEventsReturnsOnCancel(t *testing.T) {
	a, cg := convertFixture(t)
	src := newFakeSource(connectRaw(cg)) // then blocks until closed
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.RunEvents(ctx, src, events.NewWriter(&out))
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunEvents did not return after cancel")
	}
	select {
	case <-src.closed:
	default:
		t.Fatal("cancel did not close the source")
	}
}

func TestRunEventsReturnsOnSourceClose(t *testing.T) {
	a, _ := convertFixture(t)
	src := newFakeSource()
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.RunEvents(context.Background(), src, events.NewWriter(&syncBuffer{}))
	}()
	src.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunEvents did not return after the source closed")
	}
}

func TestBootClock(t *testing.T) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		t.Fatal(err)
	}
	c := newBootClock()
	got := c.wall(uint64(ts.Nano()))
	if d := time.Since(got); d < -time.Second || d > time.Second {
		t.Fatalf("boot time now maps to %v, %v from now", got, d)
	}
	if c.wall(uint64(ts.Nano())+uint64(time.Hour)).Sub(got) != time.Hour {
		t.Fatal("wall is not linear")
	}
}

func TestInWorkload(t *testing.T) {
	a, cg := convertFixture(t) // c1 at /pods/c1
	tests := []struct {
		path string
		cg   uint64
		want bool
	}{
		{"/pods/c1", cg, true},
		{"/pods/c1/sub/deeper", cg, true},
		{"/pods/c10", cg, false}, // a sibling sharing the prefix
		{"/pods", cg, false},
		{"/", cg, false},
		{"/pods/c1", cg + 1, false}, // not a registered cgroup
	}
	for _, tt := range tests {
		if got := a.inWorkload(tt.path, tt.cg); got != tt.want {
			t.Errorf("inWorkload(%q, %d) = %v, want %v", tt.path, tt.cg, got, tt.want)
		}
	}
}

// sleeper is the test binary running as a sleeping helper (see
// TestMain): a Go process, so it has threads besides its leader.
type sleeper struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has ended
	err  error         // of Wait, once done
}

func startSleeper(t *testing.T) *sleeper {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := &sleeper{cmd: exec.Command(self), done: make(chan struct{})}
	s.cmd.Env = append(os.Environ(), sleeperEnv+"=1")
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		s.cmd.Process.Kill()
		t.Fatalf("sleeper: %q, %v", line, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	return s
}

func (s *sleeper) pid() int { return s.cmd.Process.Pid }

// endedBy waits for the sleeper and returns the signal that ended it (0:
// still running after the timeout, -1: it exited). Exit status 128+N is
// signal N (the sleeper's way to report SIGUSR1 and SIGUSR2).
func (s *sleeper) endedBy(timeout time.Duration) syscall.Signal {
	select {
	case <-s.done:
		var ee *exec.ExitError
		if !errors.As(s.err, &ee) {
			return -1
		}
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return ws.Signal()
		}
		if ws.ExitStatus() > 128 {
			return syscall.Signal(ws.ExitStatus() - 128)
		}
		return -1
	case <-time.After(timeout):
		return 0
	}
}

// signalForKernel signals a process still in its workload, and spares
// one that has left it. The fake proc root says where the real child lives.
func TestSignalForKernel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cgroup string
		sig    syscall.Signal
		want   bool
	}{
		{"kill in workload", "/pods/c1/sub", syscall.SIGKILL, true},
		{"signal in workload", "/pods/c1", syscall.SIGUSR1, true},
		{"left workload", "/pods/other", syscall.SIGKILL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(t)
			a := newTestAgent(t, h, newFakeEnforcer())
			r := h.registration("c1", 100, "/pods/c1")
			if _, err := a.Register(r); err != nil {
				t.Fatal(err)
			}
			sl := startSleeper(t)
			h.process(sl.pid(), tc.cgroup)

			a.signalForKernel(&record.RawEvent{Pid: uint32(sl.pid()), Tgid: uint32(sl.pid()),
				WorkloadCgroupID: r.Identity.CgroupID, KillPending: true}, tc.sig)
			if !tc.want {
				if a.Stats().AgentKills.Load() != 0 {
					t.Fatal("signal counted for a process outside the workload")
				}
				if got := sl.endedBy(300 * time.Millisecond); got != 0 {
					t.Fatalf("child outside the workload ended by %v", got)
				}
				return
			}
			if got := sl.endedBy(5 * time.Second); got != tc.sig {
				t.Fatalf("child ended by %v, want %v", got, tc.sig)
			}
			if a.Stats().AgentKills.Load() != 1 {
				t.Fatal("signal not counted")
			}
		})
	}
}

// The kernel reports the thread that acted (Pid) and its process (Tgid);
// a thread other than the leader must be signalled through its process.
func TestSignalForKernelNonLeaderThread(t *testing.T) {
	h := newFakeHost(t)
	a := newTestAgent(t, h, newFakeEnforcer())
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	sl := startSleeper(t)
	pid := sl.pid()
	var tid int
	for deadline := time.Now().Add(5 * time.Second); tid == 0 && time.Now().Before(deadline); {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, task := range tasks {
			if n, err := strconv.Atoi(task.Name()); err == nil && n != pid {
				tid = n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if tid == 0 {
		t.Fatal("the helper has no thread besides its leader")
	}
	h.process(pid, "/pods/c1")
	h.process(tid, "/pods/c1")
	a.signalForKernel(&record.RawEvent{Pid: uint32(tid), Tgid: uint32(pid), WorkloadCgroupID: r.Identity.CgroupID, KillPending: true}, syscall.SIGKILL)
	if got := sl.endedBy(5 * time.Second); got != syscall.SIGKILL {
		t.Fatalf("process %d, whose thread %d did what the kernel reported, not killed within 5s (ended by %d), want SIGKILL", pid, tid, int(got))
	}
}

func TestSignalForKernelGoneProcess(t *testing.T) {
	a, cg := convertFixture(t)
	a.signalForKernel(&record.RawEvent{Pid: 1 << 30, Tgid: 1 << 30, WorkloadCgroupID: cg, KillPending: true}, syscall.SIGKILL) // must not panic
	if a.Stats().AgentKills.Load() != 0 {
		t.Fatal("kill counted for a missing process")
	}
}

// RunEvents carries out what the kernel left pending: SIGKILL, or the
// signal of a Signal action; nothing for monitor events.
func TestRunEventsSignalsPending(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  record.RawEvent
		want syscall.Signal // 0: none
	}{
		{"kill pending", record.RawEvent{Action: profiles.ActionSigkill, Enforced: true, KillPending: true}, syscall.SIGKILL},
		{"signal pending", record.RawEvent{Action: profiles.ActionSignal, SignalPending: true, Signal: int(syscall.SIGUSR2)}, syscall.SIGUSR2},
		{"signal without number", record.RawEvent{Action: profiles.ActionSignal, SignalPending: true}, 0},
		{"monitor", record.RawEvent{Action: profiles.ActionSigkill, Monitor: true, Signal: int(syscall.SIGUSR2)}, 0},
		{"signal sent in the kernel", record.RawEvent{Action: profiles.ActionSignal, Signal: int(syscall.SIGUSR2)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(t)
			a := newTestAgent(t, h, newFakeEnforcer())
			r := h.registration("c1", 100, "/pods/c1")
			if _, err := a.Register(r); err != nil {
				t.Fatal(err)
			}
			sl := startSleeper(t)
			h.process(sl.pid(), "/pods/c1")
			raw := tc.raw
			raw.Pid, raw.Tgid, raw.WorkloadCgroupID, raw.Profile = uint32(sl.pid()), uint32(sl.pid()), r.Identity.CgroupID, 1
			src := newFakeSource(&raw)
			src.drain = true
			a.RunEvents(context.Background(), src, events.NewWriter(&syncBuffer{}))
			timeout := 5 * time.Second
			if tc.want == 0 {
				timeout = 300 * time.Millisecond
			}
			if got := sl.endedBy(timeout); got != tc.want {
				t.Fatalf("child ended by %v, want %v", got, tc.want)
			}
		})
	}
}

type failingOut struct{}

func (failingOut) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

// Events the sink cannot write are counted, not written.
func TestRunEventsCountsSinkErrors(t *testing.T) {
	a, cg := convertFixture(t)
	src := newFakeSource(connectRaw(cg), execRaw(cg), connectRaw(cg))
	src.drain = true
	a.RunEvents(context.Background(), src, events.NewWriter(failingOut{}))
	st := a.Stats().Map()
	if st["events_sink_errors"] != 3 || st["events_written"] != 0 {
		t.Fatalf("stats %v, want 3 sink errors and nothing written", st)
	}
}

// The sink's queue holds QueueSize events however they are batched;
// what does not fit is dropped and counted.
func TestSinkQueueBound(t *testing.T) {
	a, cg := convertFixture(t)
	q := &sinkQueue{c: make(chan sinkItem, QueueSize)}
	q.queued.Store(QueueSize - 10) // a writer that is behind
	w := events.NewWriter(io.Discard)
	var batch lineBatch
	for range 25 {
		ev := a.handle(connectRaw(cg))
		a.encodeForSink(q, w, &batch, ev)
		ev.Release()
	}
	if batch.n != 10 || a.stats.EventsDropped.Load() != 15 {
		t.Fatalf("%d lines batched, %d dropped; want 10 and 15", batch.n, a.stats.EventsDropped.Load())
	}
	q.putLines(batch.buf, batch.n)
	if q.queued.Load() != QueueSize || q.tryPut(&events.Event{}) {
		t.Fatalf("queued %d, want the queue full and refusing more", q.queued.Load())
	}
	if it := <-q.c; bytes.Count(*it.lines, []byte{'\n'}) != 10 || it.n != 10 {
		t.Fatalf("queued %d lines of %d", bytes.Count(*it.lines, []byte{'\n'}), it.n)
	}
}

// pendingSource tells, as the ring buffer reader does, whether more
// records are ready; the pipe passes a batch on when none is.
type pendingSource struct {
	*fakeSource
	queued []bool // Pending's answer after each record
}

func (s *pendingSource) Pending() bool {
	if len(s.queued) == 0 {
		return false
	}
	p := s.queued[0]
	s.queued = s.queued[1:]
	return p
}

func TestRunEventsBatches(t *testing.T) {
	a, cg := convertFixture(t)
	src := &pendingSource{fakeSource: newFakeSource(connectRaw(cg), connectRaw(cg), connectRaw(cg)), queued: []bool{true, false, false}}
	var out syncBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.RunEvents(context.Background(), src, events.NewWriter(&out))
	}()
	// Not drained: the source blocks after the third record, so the
	// batches must have been passed on by then.
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "\n") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("written %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	src.Close()
	<-done
}

// RunEvents reads on a thread of its own, named so that its CPU and
// its waits for a CPU can be found (/proc/PID/task/TID), at the nice
// value it was given, and gives the thread its name and nice value back
// when it returns.
func TestRunEventsOwnsItsThread(t *testing.T) {
	a := newTestAgent(t, newFakeHost(t), newFakeEnforcer())
	a.readerNice = -3
	if os.Geteuid() != 0 {
		a.readerNice = 3 // raising it is always allowed
	}
	src := &threadSource{seen: make(chan threadState, 1)}
	var before, after threadState
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		before = currentThread(t)
		a.RunEvents(context.Background(), src, events.NewWriter(&syncBuffer{}))
		after = currentThread(t)
	}()
	<-done
	if after != before {
		t.Errorf("thread %+v after RunEvents, %+v before", after, before)
	}
	want := threadState{name: ReaderThreadName, nice: a.readerNice}
	if got := <-src.seen; got != want {
		t.Errorf("records read on thread %+v, want %+v", got, want)
	}
}

// threadState is what RunEvents sets on its thread.
type threadState struct {
	name string
	nice int
}

func currentThread(t *testing.T) threadState {
	nice, err := threadNice()
	if err != nil {
		t.Error(err)
	}
	return threadState{name: threadName(), nice: nice}
}

// threadSource tells the state of the thread it is read on, once, then
// is closed.
type threadSource struct{ seen chan threadState }

func (s *threadSource) ReadInto(*record.RawEvent) error {
	nice, _ := threadNice()
	s.seen <- threadState{name: threadName(), nice: nice}
	return record.ErrClosed
}

func (s *threadSource) Close() error { return nil }
