// Package sdnotify tells a service manager about the agent's state: the
// sd_notify(3) protocol of systemd's Type=notify services, one datagram
// of newline-separated VAR=VALUE assignments (READY=1, STATUS=...,
// STOPPING=1) to the unix datagram socket named by $NOTIFY_SOCKET.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// EnvSocket is the variable that names the service manager's socket.
const EnvSocket = "NOTIFY_SOCKET"

// Notifier sends to one service manager. A nil *Notifier sends nothing:
// the agent runs without a service manager that listens.
type Notifier struct {
	name string // as given: a path or @name
	addr *net.UnixAddr
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET, or nil when it is unset
// or empty. It unsets the variable: the programs the agent starts (runc)
// must not report to the service manager as if they were the agent.
func FromEnv() (*Notifier, error) {
	socket := os.Getenv(EnvSocket)
	os.Unsetenv(EnvSocket)
	if socket == "" {
		return nil, nil
	}
	return New(socket)
}

// New returns a Notifier for socket: an absolute path, or @name for a
// socket in the abstract namespace, whose address is name after a NUL
// byte.
func New(socket string) (*Notifier, error) {
	n := &Notifier{name: socket}
	switch {
	case strings.HasPrefix(socket, "/"):
		n.addr = &net.UnixAddr{Name: socket, Net: "unixgram"}
	case len(socket) > 1 && socket[0] == '@':
		n.addr = &net.UnixAddr{Name: "\x00" + socket[1:], Net: "unixgram"}
	default:
		return nil, fmt.Errorf("%s=%q: want an absolute path or @name (abstract socket)", EnvSocket, socket)
	}
	return n, nil
}

// Send sends the assignments in one datagram, e.g. Send("READY=1",
// "STATUS=enforcing").
func (n *Notifier) Send(assignments ...string) error {
	if n == nil {
		return nil
	}
	for _, a := range assignments {
		if !strings.Contains(a, "=") || strings.Contains(a, "\n") {
			return fmt.Errorf("sd_notify %q: want one VAR=VALUE line", a)
		}
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify to %s: %w", n.name, err)
	}
	defer conn.Close()
	msg := strings.Join(assignments, "\n")
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("sd_notify %q to %s: %w", msg, n.name, err)
	}
	return nil
}

// String is the socket as given.
func (n *Notifier) String() string { return n.name }
