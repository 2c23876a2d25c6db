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
