package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/api"
)

// fakeStreamer sends frames events, then, with follow, one frame per
// tick until ctx ends, which it reports on ended.
type fakeStreamer struct {
	*fakeHandler
	frames int
	tick   time.Duration
	ended  chan error // ctx's error when the stream ended by it
	refuse error
}

func newFakeStreamer(frames int) *fakeStreamer {
	return &fakeStreamer{fakeHandler: newFakeHandler(nil), frames: frames, tick: 50 * time.Millisecond, ended: make(chan error, 1)}
}

func (s *fakeStreamer) Stream(ctx context.Context, req *api.Request, send func(*api.Response) error) error {
	if s.refuse != nil {
		return s.refuse
	}
	for i := 0; i < s.frames; i++ {
		ev := json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
		if err := send(&api.Response{Events: &api.EventFrame{Events: []json.RawMessage{ev}}}); err != nil {
			return nil
		}
	}
	if !req.Subscribe.Follow {
		return send(&api.Response{Events: &api.EventFrame{End: true}})
	}
	if err := send(&api.Response{Events: &api.EventFrame{Live: true}}); err != nil {
		return nil
	}
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.ended <- ctx.Err()
			_ = send(&api.Response{Events: &api.EventFrame{End: true}})
			return nil
		case <-t.C:
			if err := send(&api.Response{Events: &api.EventFrame{Dropped: 1}}); err != nil {
				s.ended <- err
				return nil
			}
		}
	}
}

func TestSubscribeRecent(t *testing.T) {
	path, _, _ := serve(t, newFakeStreamer(3))
	var got []string
	err := api.Subscribe(callCtx(t), path, &api.Subscription{Tail: -1}, func(f *api.EventFrame) error {
		for _, e := range f.Events {
			got = append(got, string(e))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != `{"n":0} {"n":1} {"n":2}` {
		t.Fatalf("events %q", got)
	}
}

func TestSubscribeRefused(t *testing.T) {
	s := newFakeStreamer(0)
	s.refuse = errors.New("64 event subscribers already: the limit")
	path, _, _ := serve(t, s)
	noop := func(*api.EventFrame) error { return nil }
	if err := api.Subscribe(callCtx(t), path, &api.Subscription{}, noop); err == nil || !strings.Contains(err.Error(), "the limit") {
		t.Fatalf("refused stream: %v", err)
	}
	// Bad requests are refused before the handler sees them.
	err := api.Subscribe(callCtx(t), path, &api.Subscription{Types: []string{"kprobe"}}, noop)
	if err == nil || !strings.Contains(err.Error(), `event type "kprobe"`) {
		t.Fatalf("bad type: %v", err)
	}
	// A handler that cannot stream says so.
	path2, _, _ := serve(t, newFakeHandler(nil))
	if err := api.Subscribe(callCtx(t), path2, &api.Subscription{}, noop); err == nil || !strings.Contains(err.Error(), "subscribe is not served") {
		t.Fatalf("no streamer: %v", err)
	}
}

// A follower that hangs up ends the stream on the agent's side at once.
func TestSubscribeClientHangsUp(t *testing.T) {
	s := newFakeStreamer(1)
	s.tick = time.Hour // nothing to send: only the hang-up can end it
	path, _, _ := serve(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := api.Subscribe(ctx, path, &api.Subscription{Follow: true}, func(f *api.EventFrame) error {
		if f.Live {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe after cancel: %v", err)
	}
	select {
	case err := <-s.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stream ended by %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the agent's stream did not end after the client hung up")
	}
}

// Stopping the server ends a followed stream with an End frame, and
// Serve returns.
func TestSubscribeServerStops(t *testing.T) {
	s := newFakeStreamer(0)
	path, _, stop := serve(t, s)
	live := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- api.Subscribe(context.Background(), path, &api.Subscription{Follow: true}, func(f *api.EventFrame) error {
			if f.Live {
				close(live)
			}
			return nil
		})
	}()
	<-live
	stop() // fails the test if Serve does not return
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Subscribe when the agent stopped: %v, want the End frame", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return after the agent stopped")
	}
}

// A followed stream outlives the per-connection deadline.
func TestSubscribeOutlivesConnDeadline(t *testing.T) {
	t.Parallel()
	s := newFakeStreamer(0)
	s.tick = 500 * time.Millisecond
	path, _, _ := serve(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), ConnDeadline+5*time.Second)
	defer cancel()
	start := time.Now()
	err := api.Subscribe(ctx, path, &api.Subscription{Follow: true}, func(f *api.EventFrame) error {
		if time.Since(start) > ConnDeadline+time.Second {
			return errors.New("long enough")
		}
		return nil
	})
	if err == nil || err.Error() != "long enough" {
		t.Fatalf("stream ended after %v by %v", time.Since(start), err)
	}
}
