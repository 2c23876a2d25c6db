package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/profiles"
)

// Relay says how a relayed shell was recognised (enum relay in common.h).
type Relay uint8

const (
	RelayParent    Relay = 1 << 3 // an ancestor of the shell connected
	RelayPipe      Relay = 1 << 4 // the reader of the shell's stdout connected
	RelayAtConnect Relay = 1 << 5 // the peer connected after the shell's exec
	relayMask            = uint8(RelayParent | RelayPipe | RelayAtConnect)
)

// String names the relay as events report it.
func (r Relay) String() string {
	var s string
	switch {
	case r&RelayParent != 0:
		s = "parent"
	case r&RelayPipe != 0:
		s = "pipe"
	default:
		return ""
	}
	if r&RelayAtConnect != 0 {
		s += ",at_connect"
	}
	return s
}

// RawEvent is one decision reported by the kernel, decoded.
type RawEvent struct {
	BootNs           uint64 // CLOCK_BOOTTIME
	CgroupID         uint64 // the process's own cgroup
	WorkloadCgroupID uint64 // the registered cgroup that matched
	Pid, Tgid, Ppid  uint32
	UID              uint32
	Profile          uint32
	Errno            int32
	Point            profiles.Point
	Action           profiles.Action
	Selector         int
	Enforced         bool   // the verdict was carried out
	Killed           bool   // SIGKILL sent in the kernel
	KillPending      bool   // SIGKILL asked but left to the agent
	Backend          string // lsm, fmod_ret or fallback
	Mechanism        string
	Family           uint8
	SockType         uint8
	Protocol         uint8
	Monitor          bool // would have been enforced (monitor mode)
	SignalPending    bool // Signal left to the agent
	Signal           int
	Group            int
	State            uint8
	HasAddr          bool
	Daddr            netip.Addr
	Dport            uint16
	Saddr            netip.Addr // zero when unknown
	Sport            uint16
	StdioInet        uint8  // bit i: fd i is an INET socket
	Relay            Relay  // relay: how the relayed shell was recognised
	Peer             uint32 // relay: tgid of the process that holds the network socket
	// Args is the new image's argv, read at sched_process_exec (exec and
	// relay events of the fallback and tracepoint programs); nil elsewhere.
	// ArgsCut: argv went on beyond what the event holds.
	Args         []string
	ArgsCut      bool
	Fileless     bool // exec: the file had no link (memfd, deleted)
	Comm         string
	Binary       string // exec: base name of the executed file
	Path         string // the binary's path (exec: the new one), when known
	Owner        uint32 // TrackSock: tgid that created the socket, 0 when not tracked
	OldFD, NewFD int32  // dup
}

const (
	eventEnforced    = 1 << 0
	eventKilled      = 1 << 1
	eventHasAddr     = 1 << 2
	eventKillPending = 1 << 3
	eventSignalPend  = 1 << 4
	eventMonitor     = 1 << 5
)

// enforcers: the kernel's enforcer id -> backend and mechanism.
var enforcers = map[uint8][2]string{
	1: {BackendFallback, "cgroup_sock_addr"},
	2: {BackendFallback, "cgroup_sock_create"},
	3: {BackendFallback, "tracepoint_sigkill"},
	4: {BackendLSM, "bpf_lsm"},
	5: {BackendFmodRet, "fmod_ret"},
	6: {BackendFallback, "cgroup_sock_release"},
	7: {BackendTracepoint, "tracepoint"},
}

// EventReader reads the kernel's ring buffer.
type EventReader struct {
	rd *ringbuf.Reader
}

// NewEventReader opens the ring buffer.
func (e *Enforcer) NewEventReader() (*EventReader, error) {
	rd, err := ringbuf.NewReader(e.maps.Events)
	if err != nil {
		return nil, fmt.Errorf("open event ring buffer: %w", err)
	}
	return &EventReader{rd: rd}, nil
}

// ErrClosed is returned by Read after Close.
var ErrClosed = os.ErrClosed

// Read blocks for the next event.
func (r *EventReader) Read() (*RawEvent, error) {
	rec, err := r.rd.Read()
	if err != nil {
		if errors.Is(err, ringbuf.ErrClosed) {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("read event ring buffer: %w", err)
	}
	return decodeEvent(rec.RawSample)
}

// Close unblocks Read.
func (r *EventReader) Close() error { return r.rd.Close() }

func decodeEvent(b []byte) (*RawEvent, error) {
	var k fallbackEvent
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, &k); err != nil {
		return nil, fmt.Errorf("decode event (%d bytes): %w", len(b), err)
	}
	ev := &RawEvent{
		BootNs: k.KtimeNs, CgroupID: k.CgroupId, WorkloadCgroupID: k.WorkloadCgroupId,
		Pid: k.Pid, Tgid: k.Tgid, Ppid: k.Ppid, UID: k.Uid, Profile: k.Profile, Errno: k.Err,
		Point: profiles.Point(k.Point), Action: profiles.Action(k.Action), Selector: int(k.Selector),
		Enforced: k.Flags&eventEnforced != 0, Killed: k.Flags&eventKilled != 0,
		KillPending: k.Flags&eventKillPending != 0, HasAddr: k.Flags&eventHasAddr != 0,
		Backend: enforcers[k.Enforcer][0], Mechanism: enforcers[k.Enforcer][1], Family: k.Family, SockType: k.SockType, Protocol: k.Protocol,
		Monitor: k.Flags&eventMonitor != 0, SignalPending: k.Flags&eventSignalPend != 0,
		Signal: int(k.Signal), Group: int(k.Group), State: k.State,
		Dport: k.Dport, Sport: k.Sport, StdioInet: k.StdioInet & 0x07, Fileless: k.StdioInet&0x80 != 0,
		Relay: Relay(k.StdioInet & relayMask), Peer: k.Peer,
		Comm: cString(k.Comm[:]), Binary: cString(k.Binary[:]), Path: cString(k.Path[:]),
		Owner: k.Owner, OldFD: k.OldFd, NewFD: k.NewFd,
	}
	if k.ArgsLen > 0 && int(k.ArgsLen) <= len(k.Args) {
		raw := make([]byte, k.ArgsLen)
		for i := range raw {
			raw[i] = byte(k.Args[i])
		}
		ev.Args, ev.ArgsCut = splitArgs(raw)
	}
	if k.Sport != 0 || k.Saddr != ([16]uint8{}) {
		ev.Saddr = unmapped(netip.AddrFrom16(k.Saddr), ev.Family)
	}
	if ev.HasAddr {
		ev.Daddr = unmapped(netip.AddrFrom16(k.Daddr), ev.Family)
	}
	return ev, nil
}

func unmapped(a netip.Addr, family uint8) netip.Addr {
	if family == unix.AF_INET || a.Is4In6() {
		return a.Unmap()
	}
	return a
}

func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// splitArgs splits NUL-separated argv bytes; cut when the last argument
// has no terminator (the event's room ended inside it).
func splitArgs(b []byte) (args []string, cut bool) {
	cut = len(b) > 0 && b[len(b)-1] != 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			args = append(args, string(b))
			break
		}
		args = append(args, string(b[:i]))
		b = b[i+1:]
	}
	return args, cut
}
