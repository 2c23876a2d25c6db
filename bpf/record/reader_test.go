package record

import (
	"errors"
	"testing"
	"time"

	"github.com/ocigate/ocigate/bpf/internal/bpftest"
)

// readUntil starts a Read of rd and, after 50 ms, unblock; it returns
// the Read's error, or fails when unblock did not end it.
func readUntil(t *testing.T, rd *Reader, unblock func()) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := rd.Read()
		errc <- err
	}()
	time.AfterFunc(50*time.Millisecond, unblock)
	select {
	case err := <-errc:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Read not unblocked")
		return nil
	}
}

func TestReaderCloseUnblocksRead(t *testing.T) {
	rd, err := NewReader(bpftest.Maps(t).Events, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := readUntil(t, rd, func() { rd.Close() }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
}

// Flush ends a Read waiting on an empty ring with ErrFlushed, once.
func TestReaderFlushUnblocksRead(t *testing.T) {
	rd, err := NewReader(bpftest.Maps(t).Events, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if err := readUntil(t, rd, func() { rd.Flush() }); !errors.Is(err, ErrFlushed) {
		t.Fatalf("Read after Flush: %v, want ErrFlushed", err)
	}
	errc := make(chan error, 1)
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
	for i := 0; i < 20; i++ { // doubling: far more looks than it takes
		if d = nextInterval(d, true); d > MaxPollInterval {
			t.Fatalf("busy look %d: %v, over %v", i, d, MaxPollInterval)
		}
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
