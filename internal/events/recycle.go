package events

import "sync/atomic"

// Recycler takes back an event that nobody holds any more, to use its
// memory for another: the agent converts hundreds of thousands of
// decisions a second, and allocating each one anew costs it more than
// the rest of the conversion, and then the collector's time.
type Recycler interface {
	Recycle(*Event)
}

// Recyclable marks e as r's, with one holder: its maker. Every other
// holder of the pointer (a queue, the hub's recent events, a
// subscriber) calls Hold when it takes it and Release when it is done
// with it; after the last Release, r gets it back, and no holder may
// read it any more. An event never marked is the garbage collector's:
// Hold and Release do nothing.
func (e *Event) Recyclable(r Recycler) {
	e.recycler = r
	atomic.StoreInt32(&e.holders, 1)
}

// Hold adds a holder of e.
func (e *Event) Hold() {
	if e.recycler != nil {
		atomic.AddInt32(&e.holders, 1)
	}
}

// Release ends a hold of e (its maker's, or a Hold); the last one
// hands e back to its recycler.
func (e *Event) Release() {
	if e.recycler == nil {
		return
	}
	switch n := atomic.AddInt32(&e.holders, -1); {
	case n == 0:
		e.recycler.Recycle(e)
	case n < 0:
		panic("events: Release of an event nobody holds")
	}
}

// ReleaseAll releases each event of evs.
func ReleaseAll(evs []*Event) {
	for _, e := range evs {
		e.Release()
	}
}
