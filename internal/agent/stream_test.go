package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/eventhub"
	"github.com/ocigate/ocigate/internal/events"
)

// streamFixture is convertFixture's agent (c1 registered) with its own
// event hub sizes.
func streamFixture(t *testing.T, cfg eventhub.Config) (*Agent, uint64) {
	t.Helper()
	h := newFakeHost(t)
	a, err := New(Config{Enforcer: newFakeEnforcer(), Resolver: h.resolver(), Catalog: testCatalog(t), Events: cfg})
	if err != nil {
		t.Fatal(err)
	}
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	return a, r.Identity.CgroupID
}

// frames collects what Stream sends; block, when set, holds every send
// until it is closed.
type frames struct {
	mu    sync.Mutex
	got   []*api.EventFrame
	live  chan struct{}
	block chan struct{}
	once  sync.Once
}

func newFrames() *frames { return &frames{live: make(chan struct{})} }

func (f *frames) send(r *api.Response) error {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	if !r.OK && r.Events == nil {
		return nil
	}
	f.mu.Lock()
	f.got = append(f.got, r.Events)
	f.mu.Unlock()
	if r.Events.Live {
		f.once.Do(func() { close(f.live) })
	}
	return nil
}

// lines are the events received, as JSON lines, and the last drop count.
func (f *frames) lines() ([]string, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	var dropped uint64
	for _, fr := range f.got {
		for _, e := range fr.Events {
			out = append(out, string(e))
		}
		dropped = fr.Dropped
	}
	return out, dropped
}

func (f *frames) ended() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got) > 0 && f.got[len(f.got)-1].End
}

func subscribe(s *api.Subscription) *api.Request {
	return &api.Request{Op: api.OpSubscribe, Subscribe: s}
}

// Recent events come back as the very lines the file sink wrote.
func TestStreamRecentSameAsFile(t *testing.T) {
	a, cg := streamFixture(t, eventhub.Config{})
	other := connectRaw(cg)
	other.WorkloadCgroupID = cg + 100 // not a registered workload: no container
	src := newFakeSource(connectRaw(cg), execRaw(cg), other)
	src.drain = true
	var out syncBuffer
	a.RunEvents(context.Background(), src, events.NewWriter(&out))
	fileLines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")

	f := newFrames()
	if err := a.Stream(context.Background(), subscribe(&api.Subscription{Tail: -1}), f.send); err != nil {
		t.Fatal(err)
	}
	got, _ := f.lines()
	if !f.ended() || strings.Join(got, "\n") != strings.Join(fileLines, "\n") {
		t.Fatalf("streamed (ended %v):\n%s\nfile:\n%s", f.ended(), strings.Join(got, "\n"), out.String())
	}
	// Filters: container prefix, type, policy; tail.
	for _, tc := range []struct {
		sub  api.Subscription
		want []int // indexes into fileLines
	}{
		{api.Subscription{Tail: -1, Container: "c"}, []int{0, 1}},
		{api.Subscription{Tail: 1, Container: "c1"}, []int{1}},
		{api.Subscription{Tail: -1, Types: []string{events.TypeExec}}, nil},
		{api.Subscription{Tail: -1, Types: []string{events.TypeKprobe}, Policies: []string{"ocigate-default"}}, policyLines(t, fileLines, "ocigate-default")},
		{api.Subscription{Tail: 0}, nil},
	} {
		f := newFrames()
		if err := a.Stream(context.Background(), subscribe(&tc.sub), f.send); err != nil {
			t.Fatal(err)
		}
		got, _ := f.lines()
		var want []string
		for _, i := range tc.want {
			want = append(want, fileLines[i])
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%+v: got %d events, want lines %v", tc.sub, len(got), tc.want)
		}
	}
	if err := a.Stream(context.Background(), subscribe(&api.Subscription{Types: []string{"nope"}}), newFrames().send); err == nil {
		t.Fatal("unknown type accepted")
	}
}

// policyLines are the indexes of lines whose policy_name is p.
func policyLines(t *testing.T, lines []string, p string) []int {
	var out []int
	for i, l := range lines {
		var ev events.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Policy() == p {
			out = append(out, i)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no line has policy %q", p)
	}
	return out
}

// A follower gets new events as the pipe converts them, filtered, until
// its context ends; then the stream ends.
func TestStreamFollow(t *testing.T) {
	a, cg := streamFixture(t, eventhub.Config{})
	f := newFrames()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- a.Stream(ctx, subscribe(&api.Subscription{Follow: true, Container: "c1"}), f.send)
	}()
	<-f.live
	other := connectRaw(cg)
	other.WorkloadCgroupID = cg + 100
	src := newFakeSource(connectRaw(cg), other, execRaw(cg))
	src.drain = true
	a.RunEvents(context.Background(), src, events.NewWriter(&syncBuffer{}))
	deadline := time.Now().Add(5 * time.Second)
	for got, _ := f.lines(); len(got) < 2; got, _ = f.lines() {
		if time.Now().After(deadline) {
			t.Fatalf("follower got %d events, want 2", len(got))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := a.Status(); len(st.Subscribers) != 1 || st.Subscribers[0].Filter != "container=c1" || st.Counters["event_subscribers"] != 1 {
		t.Fatalf("status while following: %+v %v", st.Subscribers, st.Counters)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _ := f.lines()
	if len(got) != 2 || !strings.Contains(got[0], `"point":"connect"`) || !strings.Contains(got[1], `"point":"exec"`) || !f.ended() {
		t.Fatalf("follower got %q (ended %v)", got, f.ended())
	}
	if st := a.Status(); len(st.Subscribers) != 0 || st.Counters["event_subscribers"] != 0 {
		t.Fatalf("subscriber still listed after it left: %+v", st.Subscribers)
	}
}

// A follower that does not read loses events and is told how many; the
// file sink gets every event all the same, and status counts the drops.
func TestStreamSlowFollower(t *testing.T) {
	a, cg := streamFixture(t, eventhub.Config{Queue: 2})
	f := newFrames()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Stream(ctx, subscribe(&api.Subscription{Follow: true}), f.send) }()
	<-f.live
	f.mu.Lock()
	f.block = make(chan struct{}) // the follower stops reading
	f.mu.Unlock()
	const n = 50
	var items []any
	for i := 0; i < n; i++ {
		raw := connectRaw(cg)
		raw.BootNs = uint64(i + 1)
		items = append(items, raw)
	}
	src := newFakeSource(items...)
	src.drain = true
	var out syncBuffer
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		a.RunEvents(context.Background(), src, events.NewWriter(&out))
	}()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("a follower that does not read held up the event pipe")
	}
	if lines := strings.Count(out.String(), "\n"); lines != n {
		t.Fatalf("file sink wrote %d events, want %d", lines, n)
	}
	st := a.Status()
	// Some events are in the follower's hands (one frame), two queued,
	// the rest dropped.
	if d := st.Counters["events_dropped_subscribers"]; d == 0 || d > n-2 {
		t.Fatalf("events_dropped_subscribers = %d, want between 1 and %d", d, n-2)
	}
	if len(st.Subscribers) != 1 || st.Subscribers[0].Dropped != st.Counters["events_dropped_subscribers"] {
		t.Fatalf("subscribers %+v", st.Subscribers)
	}
	close(f.block) // the follower reads again
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, dropped := f.lines()
		if uint64(len(got))+dropped == n && dropped == st.Counters["events_dropped_subscribers"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower got %d events and heard of %d drops, want %d in all", len(got), dropped, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}

// Decisions are recycled once the file sink, the hub and followers are
// done with them: however they interleave, every event keeps its own
// content to the end, in the file, for a follower and in the recent
// events.
func TestRecycledEventsKeepTheirContent(t *testing.T) {
	a, cg := streamFixture(t, eventhub.Config{Recent: 8, Queue: 64})
	f := newFrames()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Stream(ctx, subscribe(&api.Subscription{Follow: true}), f.send) }()
	<-f.live
	const n = 5000
	items := make([]any, n)
	for i := range items {
		raw := connectRaw(cg)
		raw.BootNs, raw.Dport = uint64(i+1)*1000, uint16(i%60000+1)
		items[i] = raw
	}
	src := newFakeSource(items...)
	src.drain = true
	var out syncBuffer
	a.RunEvents(context.Background(), src, events.NewWriter(&out))
	file := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(file) != n {
		t.Fatalf("file sink wrote %d events, want %d", len(file), n)
	}
	seen := map[string]bool{}
	for i, line := range file {
		if want := fmt.Sprintf(`"dport":%d}`, i%60000+1); !strings.Contains(line, want) || seen[line] {
			t.Fatalf("line %d: %s, want %s once", i, line, want)
		}
		seen[line] = true
	}
	tf := newFrames()
	if err := a.Stream(ctx, subscribe(&api.Subscription{Tail: -1}), tf.send); err != nil {
		t.Fatal(err)
	}
	tail, _ := tf.lines()
	if strings.Join(tail, "\n") != strings.Join(file[n-8:], "\n") {
		t.Fatalf("recent events differ from the file's last lines:\n%q\n%q", tail, file[n-8:])
	}
	deadline := time.Now().Add(10 * time.Second)
	for got, dropped := f.lines(); uint64(len(got))+dropped < n; got, dropped = f.lines() {
		if time.Now().After(deadline) {
			t.Fatalf("follower got %d events and %d drops, want %d in all", len(got), dropped, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	got, _ := f.lines()
	for _, line := range got {
		if !seen[line] {
			t.Fatalf("follower got an event the file does not have: %s", line)
		}
		delete(seen, line) // and each once
	}
}
