package record

import (
	"errors"
	"testing"
	"time"

	"github.com/ocigate/ocigate/bpf/internal/bpftest"
)

func TestReaderCloseUnblocksRead(t *testing.T) {
	rd, err := NewReader(bpftest.Maps(t).Events, nil)
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
