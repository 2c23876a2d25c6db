package bpf

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/profiles"
)

func TestAddrKeyOf(t *testing.T) {
	tests := []struct {
		prefix  string
		set     uint32
		wantLen uint32
		want    string // the stored 16-byte address
	}{
		{"127.0.0.2/32", 3, 32 + 128, "::ffff:127.0.0.2"},
		{"10.1.2.3/8", 4, 32 + 104, "::ffff:10.0.0.0"},
		{"0.0.0.0/0", 1, 32 + 96, "::ffff:0.0.0.0"},
		{"192.168.77.200/20", 1, 32 + 116, "::ffff:192.168.64.0"},
		{"2001:db8:1:2:3:4:5:6/64", 5, 32 + 64, "2001:db8:1:2::"},
		{"2001:db8::1/128", 6, 32 + 128, "2001:db8::1"},
		{"::/0", 7, 32, "::"},
	}
	for _, tt := range tests {
		k := addrKeyOf(tt.set, netip.MustParsePrefix(tt.prefix))
		want := netip.MustParseAddr(tt.want).As16()
		if k.Prefixlen != tt.wantLen || k.Set != tt.set || k.Addr != want {
			t.Errorf("addrKeyOf(%d, %s) = {len %d set %d addr %v}, want {len %d set %d addr %v}",
				tt.set, tt.prefix, k.Prefixlen, k.Set, netip.AddrFrom16(k.Addr), tt.wantLen, tt.set, netip.AddrFrom16(want))
		}
	}
}

// The kernel looks addresses up with prefixlen 32+128 and the v4-mapped
// form; a key must match exactly the addresses in its prefix.
func TestAddrKeyCoversPrefix(t *testing.T) {
	k := addrKeyOf(1, netip.MustParsePrefix("10.0.0.0/8"))
	inPrefix := func(a netip.Addr) bool {
		b := a.As16()
		bits := int(k.Prefixlen) - 32
		for i := 0; i < bits; i++ {
			if (b[i/8]>>(7-i%8))&1 != (k.Addr[i/8]>>(7-i%8))&1 {
				return false
			}
		}
		return true
	}
	for addr, want := range map[string]bool{"10.255.1.2": true, "10.0.0.0": true, "11.0.0.1": false, "::ffff:10.1.1.1": true, "::a01:101": false} {
		if got := inPrefix(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s in 10.0.0.0/8 key: %v, want %v", addr, got, want)
		}
	}
}

func TestCompileSelector(t *testing.T) {
	e := &Enforcer{}
	tests := []struct {
		name string
		sel  profiles.Selector
		want fallbackSelector
	}{
		{"empty post", profiles.Selector{Action: profiles.ActionPost}, fallbackSelector{Action: actionPost}},
		{"raw socket override, default errno",
			profiles.Selector{SockType: unix.SOCK_RAW, Action: profiles.ActionOverride},
			fallbackSelector{Match: matchType, SockType: unix.SOCK_RAW, Action: actionDeny, Err: int32(unix.EPERM)}},
		{"family+protocol, explicit errno",
			profiles.Selector{Family: unix.AF_INET6, Protocol: unix.IPPROTO_UDP, Action: profiles.ActionOverride, Errno: int(unix.ECONNREFUSED)},
			fallbackSelector{Match: matchFamily | matchProtocol, Family: unix.AF_INET6, Protocol: unix.IPPROTO_UDP,
				Action: actionDeny, Err: int32(unix.ECONNREFUSED)}},
		{"ports in", profiles.Selector{DportIn: []profiles.PortRange{{Lo: 22, Hi: 22}, {Lo: 4000, Hi: 4999}}, Action: profiles.ActionSigkill},
			func() fallbackSelector {
				s := fallbackSelector{Match: matchDportIn, Action: actionSigkill, Nports: 2}
				s.Ports[0].Lo, s.Ports[0].Hi = 22, 22
				s.Ports[1].Lo, s.Ports[1].Hi = 4000, 4999
				return s
			}()},
		{"ports not in", profiles.Selector{DportNotIn: []profiles.PortRange{{Lo: 1, Hi: 1023}}, Action: profiles.ActionPost},
			func() fallbackSelector {
				s := fallbackSelector{Match: matchDportNotIn, Action: actionPost, Nports: 1}
				s.Ports[0].Lo, s.Ports[0].Hi = 1, 1023
				return s
			}()},
		{"stdio inet sigkill", profiles.Selector{StdioInet: true, Action: profiles.ActionSigkill},
			fallbackSelector{Match: matchStdioInet, Action: actionSigkill}},
	}
	for _, tt := range tests {
		got, err := e.compileSelector(&tt.sel)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func TestPick(t *testing.T) {
	if v, f := pick([]int{1}, nil, 1, 2); f != 1 || len(v) != 1 {
		t.Errorf("in: %v %d", v, f)
	}
	if v, f := pick(nil, []int{1, 2}, 1, 2); f != 2 || len(v) != 2 {
		t.Errorf("not in: %v %d", v, f)
	}
	if v, f := pick[int](nil, nil, 1, 2); f != 0 || v != nil {
		t.Errorf("neither: %v %d", v, f)
	}
}

func putCString(dst []int8, s string) {
	for i := 0; i < len(s) && i < len(dst); i++ {
		dst[i] = int8(s[i])
	}
}

func encode(t *testing.T, k *fallbackEvent) []byte {
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
	if n, m := binary.Size(fallbackEvent{}), int(unsafe.Sizeof(fallbackEvent{})); n != m {
		t.Fatalf("fallbackEvent: %d bytes encoded, %d in memory", n, m)
	}
}

func TestDecodeEventConnect4(t *testing.T) {
	k := fallbackEvent{KtimeNs: 123456789, CgroupId: 11, WorkloadCgroupId: 10, Pid: 4001, Tgid: 4000, Ppid: 3999, Uid: 1000,
		Profile: 2, Err: int32(unix.EPERM), Point: uint8(profiles.PointConnect), Action: uint8(profiles.ActionOverride),
		Selector: 1, Flags: eventEnforced | eventHasAddr, Enforcer: 1, Family: unix.AF_INET, SockType: unix.SOCK_STREAM,
		Protocol: unix.IPPROTO_TCP, Dport: 4444, Daddr: netip.MustParseAddr("::ffff:127.0.0.2").As16()}
	putCString(k.Comm[:], "nc")
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
	if ev.Backend != BackendFallback || ev.Mechanism != "cgroup_sock_addr" || ev.Comm != "nc" || ev.Binary != "" {
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
		{"v6 socket to a v4-mapped peer", unix.AF_INET6, eventHasAddr, "::ffff:10.1.2.3", netip.MustParseAddr("10.1.2.3")},
		{"v6 peer", unix.AF_INET6, eventHasAddr, "2001:db8::7", netip.MustParseAddr("2001:db8::7")},
		{"no address", unix.AF_INET, 0, "::ffff:10.1.2.3", netip.Addr{}},
	}
	for _, tt := range tests {
		k := fallbackEvent{Family: tt.family, Flags: tt.flags, Daddr: netip.MustParseAddr(tt.addr).As16()}
		ev, err := decodeEvent(encode(t, &k))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Daddr != tt.want || ev.HasAddr != (tt.flags&eventHasAddr != 0) {
			t.Errorf("%s: daddr %v (has %v), want %v", tt.name, ev.Daddr, ev.HasAddr, tt.want)
		}
	}
}

func TestDecodeEventExecKill(t *testing.T) {
	k := fallbackEvent{Point: uint8(profiles.PointExec), Action: uint8(profiles.ActionSigkill), Flags: eventEnforced | eventKillPending,
		Enforcer: 3, StdioInet: 0b101}
	putCString(k.Comm[:], "0123456789abcdef") // 16 bytes, no NUL
	putCString(k.Binary[:], "sh")
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
		1: {BackendFallback, "cgroup_sock_addr"}, 2: {BackendFallback, "cgroup_sock_create"},
		3: {BackendFallback, "tracepoint_sigkill"}, 4: {BackendLSM, "bpf_lsm"}, 5: {BackendFmodRet, "fmod_ret"}, 0: {"", ""},
	} {
		ev, err := decodeEvent(encode(t, &fallbackEvent{Enforcer: id}))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Backend != want[0] || ev.Mechanism != want[1] {
			t.Errorf("enforcer %d: %q/%q, want %q/%q", id, ev.Backend, ev.Mechanism, want[0], want[1])
		}
	}
}

func TestDecodeEventShortAndLong(t *testing.T) {
	full := encode(t, &fallbackEvent{Pid: 7})
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

func TestCString(t *testing.T) {
	mk := func(b ...byte) []int8 {
		out := make([]int8, len(b))
		for i, c := range b {
			out[i] = int8(c)
		}
		return out
	}
	tests := []struct {
		in   []int8
		want string
	}{
		{nil, ""},
		{mk(0, 'a'), ""},
		{mk('s', 'h', 0, 'x', 0), "sh"},
		{mk('a', 'b', 'c'), "abc"},        // no terminator
		{mk(0xc3, 0xa9, 0), "\u00e9"},     // bytes above 0x7f survive
		{mk('x', 0xff, 'y', 0), "x\xffy"}, // kept byte for byte
	}
	for _, tt := range tests {
		if got := cString(tt.in); got != tt.want {
			t.Errorf("cString(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
