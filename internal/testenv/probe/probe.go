// Package probe is the socket operations of the test probes: the e2e
// probe run inside containers (test/e2e/probe) and the vmtest suite's
// "suite probe" subcommands. Each operation uses raw syscalls instead of
// the net package, so that the error wraps exactly the errno the kernel
// returned; ErrText and NamedErrText print it as each probe's output
// contract says. The package needs no cgo: the probes stay static.
package probe

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ParseAddr parses a probe's HOST:PORT argument.
func ParseAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad address %q: %w", s, err)
	}
	return ap, nil
}

// Sockaddr returns the socket family and address of ap (an IPv4-mapped
// IPv6 address is IPv4).
func Sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	addr := ap.Addr()
	if addr.Is4() || addr.Is4In6() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: addr.Unmap().As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: addr.As16()}
}

// DialTCP connects a new close-on-exec TCP socket to ap, bounding the
// connect by timeout (SO_SNDTIMEO), and returns its descriptor.
func DialTCP(ap netip.AddrPort, timeout time.Duration) (int, error) {
	family, sa := Sockaddr(ap)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("setsockopt SO_SNDTIMEO: %w", err)
	}
	for {
		err = unix.Connect(fd, sa)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect %s: %w", ap, err)
	}
	return fd, nil
}

// TCPConnect connects a TCP socket to ap (bounded by timeout) and closes it.
func TCPConnect(ap netip.AddrPort, timeout time.Duration) error {
	fd, err := DialTCP(ap, timeout)
	if err != nil {
		return err
	}
	return closeFD(fd)
}

// UDPSendto sends one datagram to ap from an unconnected UDP socket.
func UDPSendto(ap netip.AddrPort) error {
	return withUDP(ap, func(fd int, sa unix.Sockaddr) error {
		if err := unix.Sendto(fd, []byte("probe\n"), 0, sa); err != nil {
			return fmt.Errorf("sendto %s: %w", ap, err)
		}
		return nil
	})
}

// UDPConnect connects a UDP socket to ap; no datagram is sent.
func UDPConnect(ap netip.AddrPort) error {
	return withUDP(ap, func(fd int, sa unix.Sockaddr) error {
		if err := unix.Connect(fd, sa); err != nil {
			return fmt.Errorf("connect %s: %w", ap, err)
		}
		return nil
	})
}

// UDPReceive binds a UDP socket to ap and waits up to timeout for one
// datagram.
func UDPReceive(ap netip.AddrPort, timeout time.Duration) error {
	return withUDP(ap, func(fd int, sa unix.Sockaddr) error {
		if err := unix.Bind(fd, sa); err != nil {
			return fmt.Errorf("bind %s: %w", ap, err)
		}
		return receiveOne(fd, ap, timeout)
	})
}

// receiveOne waits up to timeout for one datagram on fd, bound to ap.
func receiveOne(fd int, ap netip.AddrPort, timeout time.Duration) error {
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("setsockopt: %w", err)
	}
	buf := make([]byte, 64)
	if _, _, err := unix.Recvfrom(fd, buf, 0); err != nil {
		return fmt.Errorf("recvfrom %s: %w", ap, err)
	}
	return nil
}

// UDPSelf binds a UDP socket to ap, sends it one datagram from a second
// socket and receives it (waiting up to timeout): a datagram delivered
// to a socket of this process's.
func UDPSelf(ap netip.AddrPort, timeout time.Duration) error {
	return withUDP(ap, func(fd int, sa unix.Sockaddr) error {
		if err := unix.Bind(fd, sa); err != nil {
			return fmt.Errorf("bind %s: %w", ap, err)
		}
		if err := UDPSendto(ap); err != nil {
			return err
		}
		return receiveOne(fd, ap, timeout)
	})
}

// withUDP runs op on a new close-on-exec UDP socket of ap's family, with
// ap's socket address, and closes the socket.
func withUDP(ap netip.AddrPort, op func(fd int, sa unix.Sockaddr) error) error {
	family, sa := Sockaddr(ap)
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	return op(fd, sa)
}

// OpenSocket creates a socket(family, typ, proto) and closes it.
func OpenSocket(family, typ, proto int) error {
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	return closeFD(fd)
}

// closeFD closes fd, naming the call in its error.
func closeFD(fd int) error {
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// ErrText returns the bare errno text ("operation not permitted") when
// err wraps a syscall.Errno, so the output does not depend on the call
// that failed; else err's text.
func ErrText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// NamedErrText is ErrText with the errno's name in front
// ("EPERM: operation not permitted").
func NamedErrText(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	name := unix.ErrnoName(errno)
	if name == "" {
		name = "errno" + strconv.Itoa(int(errno))
	}
	return name + ": " + errno.Error()
}

// RawDrop sends an IPv4 header whose length (ihl 15: 60 bytes) exceeds
// the 20 bytes written on a raw socket to 127.0.0.1: the kernel allocates
// the packet, charged to the socket, then refuses it with EINVAL and
// frees it as a drop (kfree_skb). nil when it did so.
func RawDrop() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	hdr := make([]byte, 20)
	hdr[0] = 0x4f // version 4, ihl 15
	hdr[8] = 64   // ttl
	hdr[9] = 253  // protocol: experimentation
	copy(hdr[12:], []byte{127, 0, 0, 1})
	copy(hdr[16:], []byte{127, 0, 0, 1})
	err = unix.Sendto(fd, hdr, 0, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	if err == unix.EINVAL {
		return nil
	}
	if err == nil {
		return fmt.Errorf("sendto: the malformed header was sent")
	}
	return err
}
