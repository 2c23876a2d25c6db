package rulemaps

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/bpf"
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

func TestPortAllocator(t *testing.T) {
	var a portAllocator
	seen := map[uint32]bool{}
	for i := 1; i < bpf.MaxPortSets; i++ {
		idx, err := a.alloc()
		if err != nil {
			t.Fatalf("alloc %d: %v", i, err)
		}
		if idx == 0 || idx >= bpf.MaxPortSets || seen[idx] {
			t.Fatalf("alloc %d returned %d (seen %v)", i, idx, seen[idx])
		}
		seen[idx] = true
	}
	if _, err := a.alloc(); err == nil || !strings.Contains(err.Error(), "port sets in use") {
		t.Fatalf("alloc beyond %d: %v", bpf.MaxPortSets-1, err)
	}
	a.free(0)
	a.free(bpf.MaxPortSets)
	a.free(1 << 31)
	if _, err := a.alloc(); err == nil {
		t.Fatal("free of an invalid index made room")
	}
	a.free(77)
	if idx, err := a.alloc(); err != nil || idx != 77 {
		t.Fatalf("after free(77): %d, %v", idx, err)
	}
}
