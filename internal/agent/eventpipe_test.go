package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/internal/events"
)

// fakeSource replays records, then blocks until closed (or, with
// drain, reports itself closed).
type fakeSource struct {
	mu     sync.Mutex
	items  []any // *bpf.RawEvent or error
	drain  bool
	closed chan struct{}
	once   sync.Once
}

func newFakeSource(items ...any) *fakeSource {
	return &fakeSource{items: items, closed: make(chan struct{})}
}

func (s *fakeSource) Read() (*bpf.RawEvent, error) {
	s.mu.Lock()
	if len(s.items) > 0 {
		it := s.items[0]
		s.items = s.items[1:]
		s.mu.Unlock()
		if err, ok := it.(error); ok {
			return nil, err
		}
		return it.(*bpf.RawEvent), nil
	}
	s.mu.Unlock()
	if !s.drain {
		<-s.closed
	}
	return nil, bpf.ErrClosed
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

// killForKernel kills a process still in its workload, and spares one
// that has left it. The fake proc root says where the real child lives.
func TestKillForKernel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cgroup   string
		wantKill bool
	}{
		{"in workload", "/pods/c1/sub", true},
		{"left workload", "/pods/other", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(t)
			a := newTestAgent(t, h, newFakeEnforcer())
			r := h.registration("c1", 100, "/pods/c1")
			if _, err := a.Register(r); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("sleep", "60")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			defer cmd.Process.Kill()
			h.process(cmd.Process.Pid, tc.cgroup)

			a.killForKernel(&bpf.RawEvent{Pid: uint32(cmd.Process.Pid), WorkloadCgroupID: r.Identity.CgroupID, KillPending: true})
			if !tc.wantKill {
				if a.Stats().AgentKills.Load() != 0 {
					t.Fatal("kill counted for a process outside the workload")
				}
				// A SIGKILL sent above would win over this SIGTERM.
				_ = cmd.Process.Signal(syscall.SIGTERM)
				err := <-waited
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
					t.Fatalf("child ended with %v, want our SIGTERM", err)
				}
				return
			}
			select {
			case err := <-waited:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("child ended with %v, want SIGKILL", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("child not killed")
			}
			if a.Stats().AgentKills.Load() != 1 {
				t.Fatal("kill not counted")
			}
		})
	}
}

func TestKillForKernelGoneProcess(t *testing.T) {
	a, cg := convertFixture(t)
	a.killForKernel(&bpf.RawEvent{Pid: 1 << 30, WorkloadCgroupID: cg, KillPending: true}) // must not panic
	if a.Stats().AgentKills.Load() != 0 {
		t.Fatal("kill counted for a missing process")
	}
}
