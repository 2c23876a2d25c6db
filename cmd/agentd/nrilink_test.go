package main

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/internal/api"
)

// TestNRILink: the gate's marker and the gauge say connected only
// nriSettle after Synchronize, never when the connection was lost
// meanwhile, and go at once when it is lost.
func TestNRILink(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agentd.sock")
	marker := api.NRIMarker(socket)
	var gauge atomic.Uint64
	l := nriLink(socket, &gauge, zap.NewNop())
	exists := func() bool { _, err := os.Stat(marker); return err == nil }

	l.connected()
	if exists() || gauge.Load() != 0 {
		t.Fatal("connected before nriSettle")
	}
	time.Sleep(nriSettle + 300*time.Millisecond)
	if !exists() || gauge.Load() != 1 {
		t.Fatal("not connected after nriSettle")
	}
	if err := l.disconnected(); err != nil || exists() || gauge.Load() != 0 {
		t.Fatalf("still connected after the loss (%v)", err)
	}
	l.connected()
	if err := l.disconnected(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(nriSettle + 300*time.Millisecond)
	if exists() || gauge.Load() != 0 {
		t.Fatal("a connection lost before nriSettle was marked connected")
	}
	if err := l.disconnected(); err != nil {
		t.Fatalf("no marker to remove: %v", err)
	}
}
