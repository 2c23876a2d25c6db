package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/api"
)

// streamAgent answers subscribe with fixed frames (then, with follow,
// waits for the client to go) and records the subscription.
type streamAgent struct {
	frames []*api.EventFrame
	mu     sync.Mutex
	got    *api.Subscription
}

func (s *streamAgent) Handle(context.Context, *api.Request) (*api.Response, error) {
	return nil, errors.New("not here")
}

func (s *streamAgent) Stream(ctx context.Context, req *api.Request, send func(*api.Response) error) error {
	s.mu.Lock()
	s.got = req.Subscribe
	s.mu.Unlock()
	for _, f := range s.frames {
		if err := send(&api.Response{Events: f}); err != nil {
			return nil
		}
	}
	if req.Subscribe.Follow {
		<-ctx.Done()
	}
	return send(&api.Response{Events: &api.EventFrame{End: true}})
}

func serveStream(t *testing.T, s *streamAgent) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agentd.sock")
	serveAgent(t, path, 0, s)
	return path
}

// testdataEvents are the compact formatter's golden inputs and outputs.
func testdataEvents(t *testing.T) (jsonLines, compact []string) {
	t.Helper()
	dir := filepath.Join("..", "..", "internal", "events", "testdata", "compact")
	in, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join(dir, "events.golden"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(in), "\n"), "\n"), strings.Split(strings.TrimSuffix(string(golden), "\n"), "\n")
}

func TestEventsCommand(t *testing.T) {
	lines, compact := testdataEvents(t)
	var raws []json.RawMessage
	for _, l := range lines {
		raws = append(raws, json.RawMessage(l))
	}
	agent := &streamAgent{frames: []*api.EventFrame{{Events: raws[:3]}, {Events: raws[3:], Dropped: 4}}}
	path := serveStream(t, agent)

	var out, errOut bytes.Buffer
	if err := eventsCmd(context.Background(), []string{"--socket", path}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSuffix(out.String(), "\n"); got != strings.Join(lines, "\n") {
		t.Fatalf("-o json prints\n%s\nwant the lines as sent", got)
	}
	if !strings.Contains(errOut.String(), "4 events dropped") {
		t.Fatalf("stderr %q does not report the drops", errOut.String())
	}

	out.Reset()
	args := []string{"--socket", path, "-o", "compact", "--container", "web", "--type", "process_kprobe,process_exec", "--policy", "a", "--policy", "b", "--tail", "7"}
	if err := eventsCmd(context.Background(), args, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSuffix(out.String(), "\n"); got != strings.Join(compact, "\n") {
		t.Fatalf("-o compact prints\n%s\nwant\n%s", got, strings.Join(compact, "\n"))
	}
	agent.mu.Lock()
	sub := *agent.got
	agent.mu.Unlock()
	if sub.Follow || sub.Tail != 7 || sub.Container != "web" || strings.Join(sub.Types, " ") != "process_kprobe process_exec" ||
		strings.Join(sub.Policies, " ") != "a b" {
		t.Fatalf("subscription sent %+v", sub)
	}
}

// --follow runs until interrupted, which is a normal end.
func TestEventsFollowInterrupted(t *testing.T) {
	lines, _ := testdataEvents(t)
	path := serveStream(t, &streamAgent{frames: []*api.EventFrame{{Events: []json.RawMessage{json.RawMessage(lines[0])}, Live: true}}})
	ctx, cancel := context.WithCancel(context.Background())
	var out syncWriter
	done := make(chan error, 1)
	go func() { done <- eventsCmd(ctx, []string{"--socket", path, "-f"}, &out, &out) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), lines[0]) {
		if time.Now().After(deadline) {
			t.Fatalf("no event printed while following: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interrupted --follow returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("--follow did not stop when interrupted")
	}
}

func TestEventsCommandErrors(t *testing.T) {
	var out bytes.Buffer
	missing := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "xml"}, `-o "xml": want json or yaml or compact or text`},
		{[]string{"--type", "kprobe"}, `event type "kprobe"`},
		{[]string{"--tail", "-5"}, "tail -5"},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--socket", missing}, "not reachable"},
	} {
		err := eventsCmd(context.Background(), tc.args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.want)
		}
	}
}

type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
