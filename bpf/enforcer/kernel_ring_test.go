package enforcer

import (
	"context"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/profiles"
)

// The reader maps the ring buffer's data pages once, so the record a lap
// that runs past their end is put together from its two parts. A burst
// of refused connects, each to a port of its own, makes two laps of
// records; every one is read back whole, with its port, in order.
func TestRingLapsKeepRecordsWhole(t *testing.T) {
	k := newKernel(t)
	k.use(profiles.Default(), [profiles.NumPoints]uint32{})
	room := (8 + int(unsafe.Sizeof(bpf.FallbackEvent{})) + 7) &^ 7
	n := 2*int(k.e.maps.Events.MaxEntries())/room + 100
	before, err := k.e.Counters()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := k.command(ctx, helperPath(t))
	cmd.Env = append(os.Environ(), connectBurstEnv+"="+strconv.Itoa(n))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("connect burst of %d: %v: %s", n, err, out)
	}
	pid := cmd.Process.Pid
	first := func(ev *record.RawEvent) bool {
		return ev.Tgid == uint32(pid) && ev.Point == profiles.PointConnect && ev.Selector == 0
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(k.log.matching(first)) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := k.log.matching(first)
	if len(got) != n {
		after, _ := k.e.Counters()
		t.Fatalf("%d of %d connect records read (the kernel counted %d lost)", len(got), n, after.EventsLost-before.EventsLost)
	}
	attacker := netip.MustParseAddr("127.0.0.2")
	ref := *got[0]
	if ref.Daddr != attacker || !ref.Enforced || ref.WorkloadCgroupID != k.cg || ref.Path == "" || ref.StartNs == 0 {
		t.Fatalf("first record: %+v; want an enforced connect to %v in cgroup %d, with the helper's path and start", ref, attacker, k.cg)
	}
	// Each record's every field, up to the last of the record (a stack
	// id), is the first one's but for its time and port: a record put
	// together wrongly differs wherever the lap cut it.
	for i, ev := range got {
		same := *ev
		same.BootNs, same.Dport = ref.BootNs, ref.Dport
		if int(ev.Dport) != i+1 || !reflect.DeepEqual(same, ref) {
			t.Fatalf("record %d of %d: %+v; want the first one's fields with port %d: %+v", i, n, *ev, i+1, ref)
		}
	}
}
