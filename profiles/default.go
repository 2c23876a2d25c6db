package profiles

import (
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
)

// DefaultName is the name of the embedded default profile.
const DefaultName = "default"

// Shells whose stdio on a network socket is a reverse shell.
var shells = []string{"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"}

// attacker is the stand-in "attacker" of the default profile and its tests.
var attacker = netip.MustParsePrefix("127.0.0.2/32")

// Default is the embedded profile that applies until the profile language
// offers more: refuse connects and sends to the stand-in attacker, raw and
// packet sockets, and kill a shell whose stdin, stdout or stderr is an
// INET socket.
func Default() *Profile {
	deny := []netip.Prefix{attacker}
	p := &Profile{
		Name:   DefaultName,
		Policy: "ocigate-default",
		Mode:   ModeEnforce,
	}
	p.Points[PointConnect] = []Selector{
		{Call: "tcp_connect", Protocol: unix.IPPROTO_TCP, DaddrIn: deny, Action: ActionOverride, Errno: int(unix.EPERM)},
		{Call: "security_socket_connect", DaddrIn: deny, Action: ActionOverride, Errno: int(unix.EPERM)},
	}
	p.Points[PointSendmsg] = []Selector{
		{Call: "security_socket_sendmsg", DaddrIn: deny, Action: ActionOverride, Errno: int(unix.EPERM)},
	}
	// Packet sockets first: they are SOCK_RAW too, and on kernels without
	// LSM or fmod_ret they can only be stopped by killing the caller.
	p.Points[PointSockCreate] = []Selector{
		{Call: "security_socket_create", Family: unix.AF_PACKET, Action: ActionSigkill},
		{Call: "security_socket_create", SockType: unix.SOCK_RAW, Action: ActionOverride, Errno: int(unix.EPERM)},
	}
	p.Points[PointExec] = []Selector{
		{Call: "security_bprm_check", BinaryIn: slices.Clone(shells), StdioInet: true, Action: ActionSigkill},
	}
	return p
}
