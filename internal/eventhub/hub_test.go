package eventhub

import (
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/events"
)

// ev is an event of container c, policy p, numbered by its pid.
func ev(n uint32, c, p string) *events.Event {
	return &events.Event{
		ProcessKprobe: &events.Kprobe{Process: events.Process{Pid: events.Value{Value: n}, Binary: "/bin/nc",
			Pod: &events.Pod{Container: events.Container{ID: c, Name: "name-" + c}}}, FunctionName: "tcp_connect", PolicyName: p},
		Ocigate: &events.Ocigate{ContainerID: c, Point: "connect"},
	}
}

func pids(evs []*events.Event) []uint32 {
	out := make([]uint32, len(evs))
	for i, e := range evs {
		out[i] = e.ProcessKprobe.Process.Pid.Value
	}
	return out
}

func TestFilter(t *testing.T) {
	e := ev(1, "abcdef0123", "no-revshell")
	tests := []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Container: "abc"}, true},
		{Filter{Container: "abcdef0123"}, true},
		{Filter{Container: "name-abcdef0123"}, true},
		{Filter{Container: "name-abc"}, false}, // names match whole
		{Filter{Container: "bcd"}, false},
		{Filter{Types: []string{"process_exec", "process_kprobe"}}, true},
		{Filter{Types: []string{"process_exit"}}, false},
		{Filter{Policies: []string{"other", "no-revshell"}}, true},
		{Filter{Policies: []string{"no-rev"}}, false},
		{Filter{Container: "abc", Types: []string{"process_kprobe"}, Policies: []string{"no-revshell"}}, true},
		{Filter{Container: "abc", Policies: []string{"other"}}, false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(e); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.f, got, tt.want)
		}
	}
	// A process event: its type, and its container by ID or name.
	exit := &events.Event{ProcessExit: &events.Exit{Process: events.Process{Pod: &events.Pod{Container: events.Container{ID: "abc1", Name: "web"}}}}}
	for f, want := range map[string]bool{"web": true, "abc": true, "we": false} {
		if got := (Filter{Container: f, Types: []string{"process_exit"}}).Match(exit); got != want {
			t.Errorf("process_exit, container %q: Match = %v", f, got)
		}
	}
	// A claim: its type, and its container by ID or name.
	claim := &events.Event{OcigateClaim: &events.ClaimEvent{Pod: &events.Pod{Container: events.Container{ID: "def2", Name: "hostile"}}}}
	for f, want := range map[string]bool{"hostile": true, "def": true, "web": false} {
		if got := (Filter{Container: f, Types: []string{"ocigate_claim"}}).Match(claim); got != want {
			t.Errorf("ocigate_claim, container %q: Match = %v", f, got)
		}
	}
	if (Filter{Types: []string{"process_exec"}}).Match(exit) {
		t.Error("process_exit matched type process_exec")
	}
	if err := (Filter{Types: []string{"process_kprobe", "kprobe"}}).Validate(); err == nil || !strings.Contains(err.Error(), `"kprobe"`) {
		t.Fatalf("unknown type: %v", err)
	}
	if got := (Filter{Container: "c", Types: []string{"process_kprobe"}}).String(); got != "container=c type=process_kprobe" {
		t.Fatalf("String = %q", got)
	}
}

func TestRecent(t *testing.T) {
	h := New(Config{Recent: 100})
	if got, _, _ := h.Subscribe(Filter{}, -1, false); len(got) != 0 {
		t.Fatalf("empty hub gave %v", pids(got))
	}
	for i := uint32(1); i <= 50; i++ {
		h.Publish(ev(i, "c1", "p"))
	}
	if got, _, _ := h.Subscribe(Filter{}, -1, false); len(got) != 50 || got[0].ProcessKprobe.Process.Pid.Value != 1 || got[49].ProcessKprobe.Process.Pid.Value != 50 {
		t.Fatalf("before wrapping: %v", pids(got))
	}
	for i := uint32(51); i <= 250; i++ {
		c := "c1"
		if i%2 == 0 {
			c = "c2"
		}
		h.Publish(ev(i, c, "p"))
	}
	got, sub, err := h.Subscribe(Filter{}, -1, false)
	if err != nil || sub != nil {
		t.Fatalf("no follow: %v, %v", sub, err)
	}
	if len(got) != 100 || got[0].ProcessKprobe.Process.Pid.Value != 151 || got[99].ProcessKprobe.Process.Pid.Value != 250 {
		t.Fatalf("after wrapping: %v", pids(got))
	}
	got, _, _ = h.Subscribe(Filter{Container: "c2"}, 3, false)
	if p := pids(got); len(p) != 3 || p[0] != 246 || p[1] != 248 || p[2] != 250 {
		t.Fatalf("last 3 of c2: %v", p)
	}
	if got, _, _ = h.Subscribe(Filter{}, 0, false); len(got) != 0 {
		t.Fatalf("tail 0: %v", pids(got))
	}
}

// Subscribing while events are published misses none and repeats none.
func TestSubscribeNothingMissed(t *testing.T) {
	h := New(Config{Recent: 1 << 16, Queue: 1 << 16})
	const n = 20000
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint32(1); i <= n; i++ {
			if i == 100 {
				close(started)
			}
			h.Publish(ev(i, "c", "p"))
		}
	}()
	<-started
	backlog, sub, err := h.Subscribe(Filter{}, -1, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unsubscribe(sub)
	<-done
	seq := pids(backlog)
	for len(seq) < n {
		select {
		case e := <-sub.C():
			seq = append(seq, e.ProcessKprobe.Process.Pid.Value)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d of %d events", len(seq), n)
		}
	}
	for i, p := range seq {
		if p != uint32(i+1) {
			t.Fatalf("event %d is pid %d: missed or repeated around it", i, p)
		}
	}
	if sub.Dropped() != 0 {
		t.Fatalf("dropped %d with a queue large enough", sub.Dropped())
	}
}

// A subscriber that does not read drops and counts its own losses;
// publishing does not wait for it, and the others get everything.
func TestSlowSubscriber(t *testing.T) {
	h := New(Config{Queue: 4})
	_, slow, err := h.Subscribe(Filter{}, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	_, fast, _ := h.Subscribe(Filter{}, 0, true)
	_, other, _ := h.Subscribe(Filter{Container: "elsewhere"}, 0, true)
	// Publish returns while the slow one's queue is full (a blocked
	// Publish would hang the test); the fast one reads as it goes.
	var got []uint32
	for i := uint32(1); i <= 10; i++ {
		h.Publish(ev(i, "c", "p"))
		select {
		case e := <-fast.C():
			got = append(got, e.ProcessKprobe.Process.Pid.Value)
		case <-time.After(5 * time.Second):
			t.Fatalf("fast subscriber did not get event %d", i)
		}
	}
	if len(got) != 10 {
		t.Fatalf("fast subscriber got %v", got)
	}
	if slow.Dropped() != 6 || len(slow.C()) != 4 {
		t.Fatalf("slow subscriber: %d dropped, %d queued; want 6 and 4", slow.Dropped(), len(slow.C()))
	}
	if first := <-slow.C(); first.ProcessKprobe.Process.Pid.Value != 1 {
		t.Fatalf("slow subscriber keeps the oldest: got pid %d first", first.ProcessKprobe.Process.Pid.Value)
	}
	if fast.Dropped() != 0 || other.Dropped() != 0 || len(other.C()) != 0 {
		t.Fatalf("fast dropped %d, filtered-out dropped %d queued %d", fast.Dropped(), other.Dropped(), len(other.C()))
	}
	if h.Dropped() != 6 {
		t.Fatalf("hub dropped %d, want 6", h.Dropped())
	}
	slow.Sent(3)
	infos := h.Subscribers()
	if len(infos) != 3 || infos[0].ID != slow.ID || infos[0].Dropped != 6 || infos[0].Sent != 3 || infos[0].Queued != 3 ||
		infos[2].Filter != "container=elsewhere" {
		t.Fatalf("subscribers %+v", infos)
	}
	h.Unsubscribe(slow)
	h.Publish(ev(11, "c", "p"))
	if len(slow.C()) != 0 || len(h.Subscribers()) != 2 {
		t.Fatal("an unsubscribed queue still holds or receives events")
	}
	if h.Dropped() != 6 {
		t.Fatalf("hub dropped %d after unsubscribe, want still 6", h.Dropped())
	}
}

func TestSubscriberLimit(t *testing.T) {
	h := New(Config{MaxSubscribers: 2})
	_, a, _ := h.Subscribe(Filter{}, 0, true)
	if _, _, err := h.Subscribe(Filter{}, 0, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Subscribe(Filter{}, 0, true); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("third subscriber: %v", err)
	}
	if _, _, err := h.Subscribe(Filter{}, -1, false); err != nil {
		t.Fatalf("recent events without follow are not limited: %v", err)
	}
	h.Unsubscribe(a)
	if _, _, err := h.Subscribe(Filter{}, 0, true); err != nil {
		t.Fatalf("after unsubscribe: %v", err)
	}
	if _, _, err := h.Subscribe(Filter{Types: []string{"bogus"}}, 0, false); err == nil {
		t.Fatal("bad filter accepted")
	}
}

type recycled map[*events.Event]int

func (r recycled) Recycle(e *events.Event) { r[e]++ }

// The hub holds a recyclable event while it keeps it among the recent
// ones or queues it for a subscriber, and only then: dropped for a full
// queue, pushed out of the recent ones, or left queued at Unsubscribe,
// it is released; a subscriber releases what it received.
func TestHubHoldsRecyclableEvents(t *testing.T) {
	h := New(Config{Recent: 2, Queue: 1})
	_, sub, err := h.Subscribe(Filter{}, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	r := recycled{}
	var evs []*events.Event
	for i := range 4 {
		e := ev(uint32(i), "c", "p")
		e.Recyclable(r)
		h.Publish(e)
		e.Release() // the maker's hold
		evs = append(evs, e)
	}
	// 0: queued and was recent (pushed out); 1: dropped, pushed out;
	// 2, 3: recent.
	if r[evs[0]] != 0 || r[evs[1]] != 1 || r[evs[2]] != 0 || r[evs[3]] != 0 {
		t.Fatalf("recycled %v", r)
	}
	backlog, _, err := h.Subscribe(Filter{}, -1, false)
	if err != nil || len(backlog) != 2 {
		t.Fatalf("backlog %v, %v", backlog, err)
	}
	h.Publish(ev(9, "c", "p"))
	h.Publish(ev(10, "c", "p")) // 2 and 3 leave the recent ones, the backlog still holds them
	if r[evs[2]] != 0 || r[evs[3]] != 0 {
		t.Fatalf("recycled while a backlog holds them: %v", r)
	}
	events.ReleaseAll(backlog)
	if r[evs[2]] != 1 || r[evs[3]] != 1 {
		t.Fatalf("not recycled after the backlog's release: %v", r)
	}
	h.Unsubscribe(sub)
	if r[evs[0]] != 1 {
		t.Fatalf("the queued event was not released at Unsubscribe: %v", r)
	}
}
