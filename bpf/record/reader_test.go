package record

import (
	"errors"
	"testing"
	"time"

	"github.com/ocigate/ocigate/bpf/internal/bpftest"
)

func TestReaderCloseUnblocksRead(t *testing.T) {
	rd, err := NewReader(bpftest.Maps(t).Events, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := rd.Read()
		errc <- err
	}()
	time.AfterFunc(50*time.Millisecond, func() { rd.Close() })
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
}

// Flush ends a Read waiting on an empty ring with ErrFlushed, once.
func TestReaderFlushUnblocksRead(t *testing.T) {
	rd, err := NewReader(bpftest.Maps(t).Events, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := rd.Read()
		errc <- err
	}()
	time.AfterFunc(50*time.Millisecond, func() { rd.Flush() })
	select {
	case err := <-errc:
		if !errors.Is(err, ErrFlushed) {
			t.Fatalf("Read after Flush: %v, want ErrFlushed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Flush did not unblock Read")
	}
	go func() {
		_, err := rd.Read()
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("Read after a Flush that was answered: %v, want it to wait", err)
	case <-time.After(3 * MaxPollInterval):
	}
	rd.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
}

// The reader looks every PollInterval while the ring is quiet, and less
// often, up to MaxPollInterval, while every look finds records.
func TestNextInterval(t *testing.T) {
	d := PollInterval
	for i := 0; i < 5; i++ {
		d = nextInterval(d, true)
	}
	if d != MaxPollInterval {
		t.Fatalf("busy: %v, want %v", d, MaxPollInterval)
	}
	if d = nextInterval(d, false); d != PollInterval {
		t.Fatalf("quiet: %v, want %v", d, PollInterval)
	}
	if d = nextInterval(d, true); d != 2*PollInterval {
		t.Fatalf("first busy look: %v, want %v", d, 2*PollInterval)
	}
}
