package events

import "testing"

type countRecycler struct{ got []*Event }

func (r *countRecycler) Recycle(e *Event) { r.got = append(r.got, e) }

// An event goes back to its recycler after the last of its holders
// releases it, not before; one never marked recyclable never does.
func TestRecycleAfterLastRelease(t *testing.T) {
	r := &countRecycler{}
	e := &Event{NodeName: "n"}
	e.Recyclable(r)
	e.Hold()
	e.Hold()
	e.Release()
	e.Release()
	if len(r.got) != 0 {
		t.Fatal("recycled while its maker still holds it")
	}
	e.Release()
	if len(r.got) != 1 || r.got[0] != e {
		t.Fatalf("recycled %v, want the event once", r.got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a release too many went unnoticed")
		}
	}()
	e.Release()
}

func TestNotRecyclable(t *testing.T) {
	e := &Event{}
	e.Hold()
	e.Release()
	e.Release() // nothing: the collector's
	ReleaseAll([]*Event{e, e})
}
