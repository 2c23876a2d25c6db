package probe

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestErrTexts(t *testing.T) {
	err := fmt.Errorf("connect: %w", unix.EPERM)
	if got := ErrText(err); got != "operation not permitted" {
		t.Errorf("ErrText = %q", got)
	}
	if got := NamedErrText(err); got != "EPERM: operation not permitted" {
		t.Errorf("NamedErrText = %q", got)
	}
	plain := fmt.Errorf("no errno")
	if ErrText(plain) != "no errno" || NamedErrText(plain) != "no errno" {
		t.Errorf("a plain error's text changed: %q %q", ErrText(plain), NamedErrText(plain))
	}
}

func TestSockaddr(t *testing.T) {
	for s, family := range map[string]int{"127.0.0.2:4444": unix.AF_INET, "[::ffff:10.0.0.1]:53": unix.AF_INET, "[::1]:80": unix.AF_INET6} {
		ap, err := ParseAddr(s)
		if err != nil {
			t.Fatal(err)
		}
		if f, _ := Sockaddr(ap); f != family {
			t.Errorf("%s: family %d, want %d", s, f, family)
		}
	}
	if _, err := ParseAddr("nope"); err == nil {
		t.Error("ParseAddr(nope) succeeded")
	}
}

func TestSocketOps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	if err := TCPConnect(ap, 5*time.Second); err != nil {
		t.Errorf("TCPConnect to a listener: %v", err)
	}
	ln.Close()
	if err := TCPConnect(ap, 5*time.Second); ErrText(err) != unix.ECONNREFUSED.Error() {
		t.Errorf("TCPConnect to a closed port: %v", err)
	}
	if err := UDPSendto(ap); err != nil {
		t.Errorf("UDPSendto: %v", err)
	}
	if err := UDPConnect(ap); err != nil {
		t.Errorf("UDPConnect: %v", err)
	}
	if err := OpenSocket(unix.AF_INET, unix.SOCK_DGRAM, 0); err != nil {
		t.Errorf("OpenSocket: %v", err)
	}
}
