// Package eventhub fans the agent's events out to API subscribers and
// keeps the most recent ones. Publishing never blocks: each subscriber
// has a bounded queue, and what does not fit is dropped and counted for
// that subscriber alone.
package eventhub

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocigate/ocigate/internal/events"
)

// Defaults of Config. DefaultRecent is small because the hub holds each
// recent event until that many later ones push it out: at 550 000
// events/s, keeping 1000 (1.3 MiB of events, evicted cold from the CPU's
// caches and then reused for new ones) cost the agent 5% more CPU per
// event than keeping 256 (scripts/bench-events.sh, side by side). The
// events file has them all.
const (
	DefaultRecent         = 256
	DefaultQueue          = 4096
	DefaultMaxSubscribers = 64
)

// Config sizes a Hub; zero fields take the defaults.
type Config struct {
	Recent         int // events kept for subscribers that ask for recent ones
	Queue          int // events waiting per subscriber before it drops
	MaxSubscribers int
}

// Hub is safe for concurrent use. Published events are shared between
// subscribers and must not be changed afterwards.
type Hub struct {
	cfg     Config
	mu      sync.Mutex
	recent  []*events.Event // ring of cfg.Recent
	next    int             // where the next event goes in recent
	full    bool            // recent has wrapped
	subs    map[*Subscription]struct{}
	lastID  uint64
	dropped atomic.Uint64 // over every subscriber, ever
}

// New returns an empty hub.
func New(cfg Config) *Hub {
	if cfg.Recent <= 0 {
		cfg.Recent = DefaultRecent
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.MaxSubscribers <= 0 {
		cfg.MaxSubscribers = DefaultMaxSubscribers
	}
	return &Hub{cfg: cfg, recent: make([]*events.Event, cfg.Recent), subs: map[*Subscription]struct{}{}}
}

// Subscription is one subscriber's queue and counts.
type Subscription struct {
	ID      uint64
	Filter  Filter
	Since   time.Time
	queue   chan *events.Event
	sent    atomic.Uint64
	dropped atomic.Uint64
}

// C yields the subscriber's events.
func (s *Subscription) C() <-chan *events.Event { return s.queue }

// Dropped is the number of events this subscriber lost to a full queue.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Sent records n events delivered to the subscriber.
func (s *Subscription) Sent(n int) { s.sent.Add(uint64(n)) }

// Publish keeps ev among the recent events and queues it for every
// subscriber whose filter it passes; a full queue drops it and counts.
// The hub holds ev (events.Event.Hold) while it keeps or queues it.
func (h *Hub) Publish(ev *events.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.recent[h.next]; old != nil {
		old.Release()
	}
	ev.Hold()
	h.recent[h.next] = ev
	h.next++
	if h.next == len(h.recent) {
		h.next, h.full = 0, true
	}
	for s := range h.subs {
		if !s.Filter.Match(ev) {
			continue
		}
		ev.Hold()
		select {
		case s.queue <- ev:
		default:
			ev.Release()
			s.dropped.Add(1)
			h.dropped.Add(1)
		}
	}
}

// Subscribe returns the last tail recent events that pass f, oldest
// first (tail < 0: all that are kept), and, when follow, a subscription
// that receives every later one: nothing is missed or repeated between
// the two. Unsubscribe ends a subscription. The caller holds each
// event of the backlog and each it receives from the subscription's C,
// and releases it (events.Event.Release) once done with it.
func (h *Hub) Subscribe(f Filter, tail int, follow bool) ([]*events.Event, *Subscription, error) {
	if err := f.Validate(); err != nil {
		return nil, nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if follow && len(h.subs) >= h.cfg.MaxSubscribers {
		return nil, nil, fmt.Errorf("%d event subscribers already: the limit", len(h.subs))
	}
	backlog := h.matchingRecent(f, tail)
	if !follow {
		return backlog, nil, nil
	}
	h.lastID++
	s := &Subscription{ID: h.lastID, Filter: f, Since: time.Now().UTC(), queue: make(chan *events.Event, h.cfg.Queue)}
	h.subs[s] = struct{}{}
	return backlog, s, nil
}

func (h *Hub) matchingRecent(f Filter, tail int) []*events.Event {
	if tail == 0 {
		return nil
	}
	var ordered []*events.Event
	if h.full {
		ordered = append(ordered, h.recent[h.next:]...)
	}
	ordered = append(ordered, h.recent[:h.next]...)
	var out []*events.Event
	for i := len(ordered) - 1; i >= 0 && (tail < 0 || len(out) < tail); i-- {
		if f.Match(ordered[i]) {
			ordered[i].Hold()
			out = append(out, ordered[i])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Unsubscribe stops queueing for s and releases what it had queued.
func (h *Hub) Unsubscribe(s *Subscription) {
	if s == nil {
		return
	}
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
	for {
		select {
		case ev := <-s.queue:
			ev.Release()
		default:
			return
		}
	}
}

// Dropped is the number of events lost by subscribers, over all of them.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// SubscriberInfo describes a live subscription.
type SubscriberInfo struct {
	ID      uint64
	Filter  string
	Since   time.Time
	Queued  int
	Sent    uint64
	Dropped uint64
}

// Subscribers lists the live subscriptions by ID.
func (h *Hub) Subscribers() []SubscriberInfo {
	h.mu.Lock()
	out := make([]SubscriberInfo, 0, len(h.subs))
	for s := range h.subs {
		out = append(out, SubscriberInfo{ID: s.ID, Filter: s.Filter.String(), Since: s.Since,
			Queued: len(s.queue), Sent: s.sent.Load(), Dropped: s.dropped.Load()})
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
