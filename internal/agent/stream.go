package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/eventhub"
	"github.com/ocigate/ocigate/internal/events"
)

// Stream limits: a frame carries at most frameEvents events or about
// frameBytes of JSON; a follower hears of its drops within dropReport.
const (
	frameEvents = 256
	frameBytes  = 256 << 10
	dropReport  = time.Second
)

// Events exposes the event hub (recent events, subscribers).
func (a *Agent) Events() *eventhub.Hub { return a.hub }

// Stream serves api.OpSubscribe: the recent events that pass the filter,
// then, with Follow, every new one until ctx ends. It returns an error
// only when the subscription is refused.
func (a *Agent) Stream(ctx context.Context, req *api.Request, send func(*api.Response) error) error {
	if req.Op != api.OpSubscribe || req.Subscribe == nil {
		return fmt.Errorf("%s is not a stream", req.Op)
	}
	sr := req.Subscribe
	f := eventhub.Filter{Container: sr.Container, Types: sr.Types, Policies: sr.Policies}
	backlog, sub, err := a.hub.Subscribe(f, sr.Tail, sr.Follow)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	st := &streamer{send: send, sub: sub, log: a.log}
	if sub != nil {
		defer a.hub.Unsubscribe(sub)
		a.log.Info("event subscriber joined", zap.Uint64("id", sub.ID), zap.String("filter", f.String()))
		defer func() {
			a.log.Info("event subscriber left", zap.Uint64("id", sub.ID), zap.Uint64("dropped", sub.Dropped()))
		}()
	}
	for i, ev := range backlog {
		if st.add(ev) != nil {
			events.ReleaseAll(backlog[i+1:])
			return nil
		}
	}
	if !sr.Follow {
		_ = st.flush(true, false)
		return nil
	}
	if st.flush(false, true) != nil {
		return nil
	}
	tick := time.NewTicker(dropReport)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = st.flush(true, false)
			return nil
		case ev := <-sub.C():
			if st.add(ev) != nil {
				return nil
			}
			if st.drain() != nil || st.flush(false, false) != nil {
				return nil
			}
		case <-tick.C:
			if sub.Dropped() != st.reported && st.flush(false, false) != nil {
				return nil
			}
		}
	}
}

// streamer batches a subscriber's events into frames.
type streamer struct {
	send     func(*api.Response) error
	sub      *eventhub.Subscription // nil without follow
	log      *zap.Logger
	batch    []json.RawMessage
	size     int
	reported uint64 // drop count last sent
}

// add encodes ev into the batch, releases it, and sends the batch when
// it is full.
func (s *streamer) add(ev *events.Event) error {
	b, err := ev.AppendJSON(nil)
	ev.Release()
	if err != nil {
		s.log.Warn("event not streamed", zap.Error(err))
		return nil
	}
	if len(b) > api.MaxMessageSize/2 {
		s.log.Warn("event too large to stream", zap.Int("bytes", len(b)))
		return nil
	}
	s.batch = append(s.batch, b)
	s.size += len(b)
	if len(s.batch) >= frameEvents || s.size >= frameBytes {
		return s.flush(false, false)
	}
	return nil
}

// drain adds what is already queued, without waiting.
func (s *streamer) drain() error {
	for {
		select {
		case ev := <-s.sub.C():
			if err := s.add(ev); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// flush sends the batch (even empty when end or live is to be said).
func (s *streamer) flush(end, live bool) error {
	var dropped uint64
	if s.sub != nil {
		dropped = s.sub.Dropped()
	}
	if len(s.batch) == 0 && !end && !live && dropped == s.reported {
		return nil
	}
	f := &api.EventFrame{Events: s.batch, Dropped: dropped, End: end, Live: live}
	err := s.send(&api.Response{Events: f})
	if err == nil && s.sub != nil {
		s.sub.Sent(len(s.batch))
	}
	s.batch, s.size, s.reported = nil, 0, dropped
	return err
}
