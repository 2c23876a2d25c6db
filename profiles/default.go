package profiles

import (
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
)

// DefaultName is the name of the embedded default profile.
const DefaultName = "default"

// defaultPolicy is the policy_name of the default profile's events.
const defaultPolicy = "ocigate-default"

// shells are the shells whose stdio on a network socket is a reverse
// shell.
var shells = []string{"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"}

// attacker is the stand-in "attacker" of the default profile and its tests.
var attacker = netip.MustParsePrefix("127.0.0.2/32")

// Default is the embedded profile that applies until the profile language
// offers more: refuse connects and sends to the stand-in attacker, raw and
// packet sockets, and kill a shell whose stdin, stdout or stderr is an
// INET socket or that a connected process relays.
func Default() *Profile {
	deny := AddrMatch{Prefixes: []netip.Prefix{attacker}}
	eperm := int(unix.EPERM)
	p := &Profile{Name: DefaultName, Mode: ModeEnforce}
	p.Points[PointConnect] = []Selector{
		{Policy: defaultPolicy, Call: "tcp_connect", Protocols: []uint8{unix.IPPROTO_TCP}, Daddr: deny, Action: ActionOverride, Errno: eperm},
		{Policy: defaultPolicy, Call: "security_socket_connect", Daddr: deny, Action: ActionOverride, Errno: eperm},
	}
	p.Points[PointSendmsg] = []Selector{
		{Policy: defaultPolicy, Call: "security_socket_sendmsg", Daddr: deny, Action: ActionOverride, Errno: eperm},
	}
	// Packet sockets first: they are SOCK_RAW too, and on kernels without
	// LSM or fmod_ret they can only be stopped by killing the caller.
	p.Points[PointSockCreate] = []Selector{
		{Policy: defaultPolicy, Call: "security_socket_create", Families: []uint8{unix.AF_PACKET}, Action: ActionSigkill},
		// Raw inet sockets only: glibc's getaddrinfo opens raw netlink sockets.
		{Policy: defaultPolicy, Call: "security_socket_create", Families: []uint8{unix.AF_INET, unix.AF_INET6},
			SockTypes: []uint8{unix.SOCK_RAW}, Action: ActionOverride, Errno: eperm},
	}
	p.Points[PointExec] = []Selector{
		{Policy: defaultPolicy, Call: "security_bprm_check", Names: NameMatch{Names: slices.Clone(shells)}, StdioInet: true, Action: ActionSigkill},
	}
	p.Points[PointRelay] = []Selector{
		{Policy: defaultPolicy, Call: "security_bprm_check", Names: NameMatch{Names: slices.Clone(shells)}, Relayed: true, Action: ActionSigkill},
	}
	return p
}
