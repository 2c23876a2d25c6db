package record

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/profiles"
)

func encode(t *testing.T, k *bpf.FallbackEvent) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, k); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// binary.Read decodes the record packed; that is only right when the Go
// struct (like the C one) has no implicit padding.
func TestEventLayoutHasNoPadding(t *testing.T) {
	if n, m := binary.Size(bpf.FallbackEvent{}), int(unsafe.Sizeof(bpf.FallbackEvent{})); n != m {
		t.Fatalf("FallbackEvent: %d bytes encoded, %d in memory", n, m)
	}
}

func TestDecodeEventConnect4(t *testing.T) {
	k := bpf.FallbackEvent{KtimeNs: 123456789, CgroupId: 11, WorkloadCgroupId: 10, Pid: 4001, Tgid: 4000, Ppid: 3999, Uid: 1000,
		Profile: 2, Err: int32(unix.EPERM), Point: uint8(profiles.PointConnect), Action: uint8(profiles.ActionOverride),
		Selector: 1, Flags: bpf.EventEnforced | bpf.EventHasAddr, Enforcer: 1, Family: unix.AF_INET, SockType: unix.SOCK_STREAM,
		Protocol: unix.IPPROTO_TCP, Dport: 4444, Daddr: netip.MustParseAddr("::ffff:127.0.0.2").As16()}
	bpf.PutCString(k.Comm[:], "nc")
	ev, err := decodeEvent(encode(t, &k))
	if err != nil {
		t.Fatal(err)
	}
	if ev.BootNs != 123456789 || ev.CgroupID != 11 || ev.WorkloadCgroupID != 10 || ev.Pid != 4001 || ev.Tgid != 4000 ||
		ev.Ppid != 3999 || ev.UID != 1000 || ev.Profile != 2 || ev.Errno != int32(unix.EPERM) {
		t.Errorf("ids: %+v", ev)
	}
	if ev.Point != profiles.PointConnect || ev.Action != profiles.ActionOverride || ev.Selector != 1 {
		t.Errorf("rule: point %v action %v selector %d", ev.Point, ev.Action, ev.Selector)
	}
	if !ev.Enforced || ev.Killed || ev.KillPending || !ev.HasAddr {
		t.Errorf("flags: %+v", ev)
	}
	if ev.Backend != bpf.BackendFallback || ev.Mechanism != "cgroup_sock_addr" || ev.Comm != "nc" || ev.Binary != "" {
		t.Errorf("backend %q mechanism %q comm %q binary %q", ev.Backend, ev.Mechanism, ev.Comm, ev.Binary)
	}
	if ev.Daddr != netip.MustParseAddr("127.0.0.2") || !ev.Daddr.Is4() || ev.Dport != 4444 ||
		ev.Family != unix.AF_INET || ev.SockType != unix.SOCK_STREAM || ev.Protocol != unix.IPPROTO_TCP {
		t.Errorf("address: %v port %d family %d type %d proto %d", ev.Daddr, ev.Dport, ev.Family, ev.SockType, ev.Protocol)
	}
}

func TestDecodeEventAddresses(t *testing.T) {
	tests := []struct {
		name   string
		family uint8
		flags  uint8
		addr   string
		want   netip.Addr
	}{
		{"v6 socket to a v4-mapped peer", unix.AF_INET6, bpf.EventHasAddr, "::ffff:10.1.2.3", netip.MustParseAddr("10.1.2.3")},
		{"v6 peer", unix.AF_INET6, bpf.EventHasAddr, "2001:db8::7", netip.MustParseAddr("2001:db8::7")},
		{"no address", unix.AF_INET, 0, "::ffff:10.1.2.3", netip.Addr{}},
	}
	for _, tt := range tests {
		k := bpf.FallbackEvent{Family: tt.family, Flags: tt.flags, Daddr: netip.MustParseAddr(tt.addr).As16()}
		ev, err := decodeEvent(encode(t, &k))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Daddr != tt.want || ev.HasAddr != (tt.flags&bpf.EventHasAddr != 0) {
			t.Errorf("%s: daddr %v (has %v), want %v", tt.name, ev.Daddr, ev.HasAddr, tt.want)
		}
	}
}

func TestDecodeEventExecKill(t *testing.T) {
	k := bpf.FallbackEvent{Point: uint8(profiles.PointExec), Action: uint8(profiles.ActionSigkill), Flags: bpf.EventEnforced | bpf.EventKillPending,
		Enforcer: 3, StdioInet: 0b101}
	bpf.PutCString(k.Comm[:], "0123456789abcdef") // 16 bytes, no NUL
	bpf.PutCString(k.Binary[:], "sh")
	ev, err := decodeEvent(encode(t, &k))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Point != profiles.PointExec || ev.Action != profiles.ActionSigkill || !ev.KillPending || ev.Killed || !ev.Enforced {
		t.Errorf("exec event %+v", ev)
	}
	if ev.Comm != "0123456789abcdef" || ev.Binary != "sh" || ev.StdioInet != 0b101 || ev.Mechanism != "tracepoint_sigkill" {
		t.Errorf("comm %q binary %q stdio %b mechanism %q", ev.Comm, ev.Binary, ev.StdioInet, ev.Mechanism)
	}
	if ev.HasAddr || ev.Daddr.IsValid() {
		t.Errorf("exec event has an address: %v", ev.Daddr)
	}
}

func TestDecodeEventEnforcers(t *testing.T) {
	for id, want := range map[uint8][2]string{
		1: {bpf.BackendFallback, "cgroup_sock_addr"}, 2: {bpf.BackendFallback, "cgroup_sock_create"},
		3: {bpf.BackendFallback, "tracepoint_sigkill"}, 4: {bpf.BackendLSM, "bpf_lsm"}, 5: {bpf.BackendFmodRet, "fmod_ret"},
		6: {bpf.BackendFallback, "cgroup_sock_release"}, 7: {bpf.BackendTracepoint, "tracepoint"}, 0: {"", ""},
	} {
		ev, err := decodeEvent(encode(t, &bpf.FallbackEvent{Enforcer: id}))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Backend != want[0] || ev.Mechanism != want[1] {
			t.Errorf("enforcer %d: %q/%q, want %q/%q", id, ev.Backend, ev.Mechanism, want[0], want[1])
		}
	}
}

func TestDecodeEventShortAndLong(t *testing.T) {
	full := encode(t, &bpf.FallbackEvent{Pid: 7})
	if _, err := decodeEvent(full[:10]); err == nil || !strings.Contains(err.Error(), "decode event (10 bytes)") {
		t.Fatalf("short record: %v", err)
	}
	if _, err := decodeEvent(nil); err == nil {
		t.Fatal("empty record decoded")
	}
	// Ring buffer samples may carry padding after the record.
	ev, err := decodeEvent(append(full, 0, 0, 0, 0, 0, 0, 0, 0))
	if err != nil || ev.Pid != 7 {
		t.Fatalf("padded record: %+v, %v", ev, err)
	}
}

func TestDecodeEventNewFields(t *testing.T) {
	k := bpf.FallbackEvent{Point: uint8(profiles.PointConnect), Action: bpf.ActionSignal, Selector: 9, Group: 3, Signal: uint8(unix.SIGUSR1),
		Flags: bpf.EventSignalPending | bpf.EventHasAddr, Enforcer: 1, Family: unix.AF_INET, State: 7, Sport: 40000, Dport: 80,
		Saddr: netip.MustParseAddr("::ffff:10.0.0.5").As16(), Daddr: netip.MustParseAddr("::ffff:10.0.0.6").As16()}
	bpf.PutCString(k.Path[:], "/usr/bin/curl")
	ev, err := decodeEvent(encode(t, &k))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Action != profiles.ActionSignal || !ev.SignalPending || ev.Signal != int(unix.SIGUSR1) || ev.Group != 3 || ev.Selector != 9 ||
		ev.Enforced || ev.Monitor || ev.State != 7 || ev.Path != "/usr/bin/curl" {
		t.Fatalf("event %+v", ev)
	}
	if ev.Saddr != netip.MustParseAddr("10.0.0.5") || ev.Sport != 40000 || ev.Daddr != netip.MustParseAddr("10.0.0.6") || ev.Dport != 80 {
		t.Fatalf("addresses %v:%d -> %v:%d", ev.Saddr, ev.Sport, ev.Daddr, ev.Dport)
	}

	// Monitor: what would have been denied.
	ev, err = decodeEvent(encode(t, &bpf.FallbackEvent{Action: bpf.ActionDeny, Flags: bpf.EventMonitor}))
	if err != nil || !ev.Monitor || ev.Enforced || ev.SignalPending || ev.Action != profiles.ActionOverride {
		t.Fatalf("monitor event %+v, %v", ev, err)
	}
}

// bind reports the local address as saddr/sport and no destination.
func TestDecodeEventBind(t *testing.T) {
	k := bpf.FallbackEvent{Point: uint8(profiles.PointBind), Action: bpf.ActionDeny, Flags: bpf.EventEnforced, Family: unix.AF_INET6,
		SockType: unix.SOCK_STREAM, Sport: 4444, Saddr: netip.MustParseAddr("::ffff:127.0.0.1").As16()}
	ev, err := decodeEvent(encode(t, &k))
	if err != nil {
		t.Fatal(err)
	}
	if ev.HasAddr || ev.Daddr.IsValid() || ev.Dport != 0 || ev.Saddr != netip.MustParseAddr("127.0.0.1") || ev.Sport != 4444 {
		t.Fatalf("bind event: daddr %v (has %v) saddr %v:%d", ev.Daddr, ev.HasAddr, ev.Saddr, ev.Sport)
	}
	// [::]:8080 on a v6 socket: the zero address is still an address.
	k = bpf.FallbackEvent{Point: uint8(profiles.PointBind), Family: unix.AF_INET6, Sport: 8080}
	if ev, _ := decodeEvent(encode(t, &k)); ev.Saddr != netip.IPv6Unspecified() || ev.Sport != 8080 {
		t.Fatalf("[::]:8080: %v:%d", ev.Saddr, ev.Sport)
	}
	// No source known: no saddr.
	if ev, _ := decodeEvent(encode(t, &bpf.FallbackEvent{Family: unix.AF_INET})); ev.Saddr.IsValid() {
		t.Fatalf("saddr %v without a source", ev.Saddr)
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		cut  bool
	}{
		{"sh\x00-i\x00", []string{"sh", "-i"}, false},
		{"sh\x00", []string{"sh"}, false},
		{"sh\x00-c\x00echo hel", []string{"sh", "-c", "echo hel"}, true},
		{"sh\x00\x00x\x00", []string{"sh", "", "x"}, false},
	} {
		got, cut := splitArgs(nil, []byte(tc.in))
		if !slices.Equal(got, tc.want) || cut != tc.cut {
			t.Errorf("splitArgs(%q) = %q, %v; want %q, %v", tc.in, got, cut, tc.want, tc.cut)
		}
	}
}

// Process records: kind, identities and times, the exit status.
func TestDecodeProcessRecords(t *testing.T) {
	k := bpf.FallbackEvent{Kind: uint8(KindExec), KtimeNs: 5000, Pid: 42, Tgid: 42, Ppid: 7, Uid: 1000, Profile: 3,
		StartTime: 4000, ParentStartTime: 100, WorkloadCgroupId: 9, ArgsLen: 16}
	bpf.PutCString(k.Path[:], "/usr/bin/python3.11")
	bpf.PutCString(k.Args[:], "python3\x00-c\x00pass\x00")
	ev, err := decodeEvent(encode(t, &k))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != KindExec || ev.StartNs != 4000 || ev.ParentStartNs != 100 || ev.Ppid != 7 || ev.Path != "/usr/bin/python3.11" ||
		!slices.Equal(ev.Args, []string{"python3", "-c", "pass"}) || ev.ArgsCut {
		t.Fatalf("exec record %+v", ev)
	}
	ev, err = decodeEvent(encode(t, &bpf.FallbackEvent{Kind: uint8(KindExit), Tgid: 42, ExitCode: 3 << 8, StartTime: 4000}))
	if err != nil || ev.Kind != KindExit || ev.ExitCode != 3<<8 || ev.StartNs != 4000 {
		t.Fatalf("exit record %+v, %v", ev, err)
	}
	// Decisions are kind 0, as the kernel's zeroed records are.
	if ev, _ := decodeEvent(encode(t, &bpf.FallbackEvent{Point: uint8(profiles.PointDup)})); ev.Kind != KindDecision {
		t.Fatalf("decision decoded as %v", ev.Kind)
	}
	for k, want := range map[Kind]string{KindDecision: "decision", KindExec: "exec", KindClone: "clone", KindExit: "exit", 9: "kind(9)"} {
		if k.String() != want {
			t.Errorf("Kind(%d) = %q, want %q", k, k.String(), want)
		}
	}
}

// Decoding into a reused RawEvent leaves nothing of the previous record
// and reuses the argv slice; interned strings are shared.
func TestDecodeIntoReuses(t *testing.T) {
	var in interner
	a := bpf.FallbackEvent{ArgsLen: 6, Pid: 1, Kind: uint8(KindExec)}
	bpf.PutCString(a.Args[:], "sh\x00-i\x00")
	bpf.PutCString(a.Path[:], "/bin/sh")
	var ev RawEvent
	if err := decodeInto(encode(t, &a), &ev, &in); err != nil {
		t.Fatal(err)
	}
	first := ev.Args
	if err := decodeInto(encode(t, &bpf.FallbackEvent{Pid: 2, Flags: bpf.EventHasAddr}), &ev, &in); err != nil {
		t.Fatal(err)
	}
	if ev.Pid != 2 || ev.Args != nil || ev.Path != "" || ev.Kind != KindDecision || !ev.HasAddr {
		t.Fatalf("second record %+v", ev)
	}
	if err := decodeInto(encode(t, &a), &ev, &in); err != nil {
		t.Fatal(err)
	}
	if &ev.Args[0] != &first[0] {
		t.Error("argv not decoded into the reused slice")
	}
	p1 := ev.Path
	if err := decodeInto(encode(t, &a), &ev, &in); err != nil {
		t.Fatal(err)
	}
	if unsafe.StringData(p1) != unsafe.StringData(ev.Path) || ev.Path != "/bin/sh" {
		t.Error("path not interned")
	}
	// Full, the interner starts over rather than grow.
	for i := 0; i < internMax+10; i++ {
		var k [8]int8
		bpf.PutCString(k[:], strconv.Itoa(i))
		in.str(k[:], slotComm)
	}
	if len(in.m) > internMax {
		t.Fatalf("interner holds %d strings", len(in.m))
	}
}
