package enforcer

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"go.uber.org/zap/zaptest"
)

// The per-packet points attach and detach on demand, their state
// survives a restart over the same pins (the detached point's program
// is taken over from its pin, attached again without loading anything),
// and a full Load over those pins attaches everything and clears the
// program pins.
func TestOnDemandPointsAttachDetachAcrossRestarts(t *testing.T) {
	dir, root := pinTestDir(t)
	load := func() *Enforcer {
		t.Helper()
		e, err := Load(Options{CgroupRoot: root, PinDir: dir, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e1 := load()
	if got := e1.OnDemandPoints(); !reflect.DeepEqual(got, []string{"drop", "receive", "xmit"}) {
		t.Fatalf("on-demand points %v", got)
	}
	detachXmit(t, e1, dir)
	if runs := xmitRuns(t, e1); runs != 0 {
		t.Fatalf("detached xmit ran %d times under loopback traffic", runs)
	}
	failedAttachLeavesItDetached(t, e1, dir)
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart over the same objects: taken over, xmit still detached.
	e2 := load()
	if st := e2.Pins(); !st.Reused {
		t.Fatalf("restart over the same objects: pin state %+v", st)
	}
	wantXmit(t, e2, dir, false)
	if !e2.PointAttached("receive") || !e2.PointAttached("drop") {
		t.Fatal("receive or drop detached after the restart")
	}
	if err := e2.AttachPoint("xmit"); err != nil {
		t.Fatal(err)
	}
	wantXmit(t, e2, dir, true)
	if runs := xmitRuns(t, e2); runs == 0 {
		t.Fatal("attached xmit never ran under loopback traffic")
	}
	if err := e2.DetachPoint("receive"); err != nil {
		t.Fatal(err)
	}
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}

	// A full Load (an upgrade: no usable record) attaches every point and
	// leaves no program pin.
	if err := os.Remove(filepath.Join(dir, statePin)); err != nil {
		t.Fatal(err)
	}
	e3 := load()
	defer e3.Close()
	if st := e3.Pins(); st.Reused {
		t.Fatalf("Load without a record reused the pins: %+v", st)
	}
	for _, pt := range e3.OnDemandPoints() {
		if !e3.PointAttached(pt) {
			t.Errorf("%s detached after a full Load", pt)
		}
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "progs")); err != nil || len(entries) != 0 {
		t.Fatalf("program pins after a full Load: %v %v", entries, err)
	}
}

// failedAttachLeavesItDetached: an attach of the detached xmit that
// fails (its link cannot be pinned: a directory is in the way) leaves
// the point as it was.
func failedAttachLeavesItDetached(t *testing.T, e *Enforcer, dir string) {
	t.Helper()
	blocker := filepath.Join(dir, "links", "dev_xmit-next", "x")
	if err := os.MkdirAll(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.AttachPoint("xmit"); err == nil || !strings.Contains(err.Error(), "attach point xmit") {
		t.Fatalf("AttachPoint with its pin blocked: %v", err)
	}
	wantXmit(t, e, dir, false)
	if runs := xmitRuns(t, e); runs != 0 {
		t.Fatalf("xmit ran %d times after a failed attach", runs)
	}
	if err := os.RemoveAll(filepath.Dir(blocker)); err != nil {
		t.Fatal(err)
	}
}

// wantXmit checks every sign of xmit's state: the enforcer's, Backends,
// the link and program pins.
func wantXmit(t *testing.T, e *Enforcer, dir string, attached bool) {
	t.Helper()
	if e.PointAttached("xmit") != attached {
		t.Fatalf("PointAttached(xmit) = %v, want %v", !attached, attached)
	}
	for _, pb := range e.Backends() {
		if pb.Point == "xmit" && pb.Detached == attached {
			t.Fatalf("Backends: xmit %+v, want attached %v", pb, attached)
		}
	}
	_, linkErr := os.Stat(filepath.Join(dir, "links", "dev_xmit"))
	_, progErr := os.Stat(filepath.Join(dir, "progs", "dev_xmit"))
	if (linkErr == nil) != attached || (progErr == nil) == attached {
		t.Fatalf("pins with xmit attached %v: link %v, program %v", attached, linkErr, progErr)
	}
}

// xmitRuns sends UDP datagrams on loopback with the kernel's program
// statistics on and returns how many times xmit's program ran meanwhile.
func xmitRuns(t *testing.T, e *Enforcer) uint64 {
	t.Helper()
	stats, err := EnableStats()
	if err != nil {
		t.Skipf("bpf_stats: %v", err)
	}
	defer stats.Close()
	prog := e.named["dev_xmit"].prog
	if prog == nil {
		t.Fatal("xmit's program is not known")
	}
	before := progRuns(t, prog)
	c, err := net.Dial("udp4", "127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 20 {
		if _, err := c.Write([]byte("x")); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// ECONNREFUSED from an earlier datagram's ICMP: it was sent.
			continue
		}
	}
	return progRuns(t, prog) - before
}

func progRuns(t *testing.T, p *ebpf.Program) uint64 {
	t.Helper()
	st, err := p.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st.RunCount
}

// detachXmit detaches an attached xmit, twice, and checks it is reported
// attached until its link has left the kernel, then detached.
func detachXmit(t *testing.T, e *Enforcer, dir string) {
	t.Helper()
	xmit := pinnedLinkID(t, dir, "dev_xmit")
	wantXmit(t, e, dir, true)
	if err := e.DetachPoint("xmit"); err != nil {
		t.Fatal(err)
	}
	if err := e.DetachPoint("xmit"); err != nil { // twice: nothing to do
		t.Fatal(err)
	}
	// The links close behind DetachPoint: until they have, the point is
	// reported attached.
	if linkExists(t, xmit) && !e.PointAttached("xmit") {
		t.Fatal("xmit reported detached while its link is still in the kernel")
	}
	e.settleDetaches()
	if linkExists(t, xmit) {
		t.Fatal("xmit's link is still in the kernel after DetachPoint settled")
	}
	wantXmit(t, e, dir, false)
}
