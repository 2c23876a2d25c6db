package wire

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// Conn is a unix stream socket that a one-request client uses with
// plain blocking system calls. A short-lived process such as the hook
// then never starts the runtime's network poller (an epoll instance, an
// eventfd, a parked goroutine woken through it), which net.Dial costs a
// fresh process: about 0.15 ms of a round trip of about 2 ms here. A
// deadline becomes the socket's send and receive timeouts; Shutdown,
// from another goroutine, wakes a blocked read.
type Conn struct {
	f *os.File
}

// Dial connects to the unix socket at path; each send and receive on
// the connection ends at deadline (none when it is zero). A deadline
// already passed fails at once with os.ErrDeadlineExceeded.
func Dial(path string, deadline time.Time) (*Conn, error) {
	if passed(deadline) {
		return nil, os.ErrDeadlineExceeded
	}
	fd, err := connect(path, 0, deadline)
	if err != nil {
		return nil, err
	}
	return &Conn{f: os.NewFile(uintptr(fd), path)}, nil
}

// DialPolled connects to the unix socket at path with a non-blocking
// socket in the runtime's poller: a file with deadlines, as a net.Conn,
// for a long-lived stream (package api's Subscribe) without the net
// package. A full backlog fails at once (EAGAIN), as net.Dial's unix
// connect does.
func DialPolled(path string) (*os.File, error) {
	fd, err := connect(path, syscall.SOCK_NONBLOCK, time.Time{})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// Listening reports whether an agent accepts connections on socket: nil
// when a connect succeeds (the connection is closed at once), else the
// connect's error (NotListening tells no agent from other failures). It
// costs a connect: no request, none of the agent's work. The connect
// does not wait (a full backlog fails at once, EAGAIN); a deadline
// already passed fails with os.ErrDeadlineExceeded.
func Listening(socket string, deadline time.Time) error {
	if passed(deadline) {
		return os.ErrDeadlineExceeded
	}
	fd, err := connect(socket, syscall.SOCK_NONBLOCK, time.Time{})
	if err != nil {
		return err
	}
	return os.NewSyscallError("close", syscall.Close(fd))
}

// passed reports whether deadline is set and passed.
func passed(deadline time.Time) bool {
	return !deadline.IsZero() && !time.Now().Before(deadline)
}

// connect returns a unix stream socket (with flags, such as
// SOCK_NONBLOCK) connected to path, its sends and receives bounded by
// deadline when set.
func connect(path string, flags int, deadline time.Time) (int, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|flags, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if !deadline.IsZero() {
		if err := setTimeouts(fd, time.Until(deadline)); err != nil {
			syscall.Close(fd)
			return -1, err
		}
	}
	err = connectUnix(fd, path)
	if err != nil {
		syscall.Close(fd)
		if flags&syscall.SOCK_NONBLOCK == 0 && errors.Is(err, syscall.EAGAIN) {
			err = os.ErrDeadlineExceeded // the send timeout passed in a full backlog
		}
		return -1, &os.PathError{Op: "connect", Path: path, Err: err}
	}
	return fd, nil
}

// connectUnix connects fd to the unix socket at path, again when a
// signal interrupted it.
func connectUnix(fd int, path string) error {
	for {
		err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path})
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// setTimeouts bounds each send and receive on fd by d (at least 1 us:
// zero would mean none).
func setTimeouts(fd int, d time.Duration) error {
	tv := syscall.NsecToTimeval(max(d, time.Microsecond).Nanoseconds())
	for _, opt := range []int{syscall.SO_SNDTIMEO, syscall.SO_RCVTIMEO} {
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, opt, &tv); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}

// Shutdown ends both directions, waking a blocked read or write; the
// file's Control keeps its descriptor open meanwhile. It is safe to call
// from another goroutine, also after Close.
func (c *Conn) Shutdown() {
	if sc, err := c.f.SyscallConn(); err == nil {
		_ = sc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
	}
}

// Read reads from the socket; a receive timeout is os.ErrDeadlineExceeded,
// as a net.Conn's deadline.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.f.Read(b)
	return n, timeoutErr(err)
}

// Write writes to the socket; a send timeout is os.ErrDeadlineExceeded.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.f.Write(b)
	return n, timeoutErr(err)
}

// Close closes the socket.
func (c *Conn) Close() error { return c.f.Close() }

// timeoutErr turns a socket timeout (EAGAIN on a blocking socket) into
// os.ErrDeadlineExceeded, keeping the system call's error too.
func timeoutErr(err error) error {
	if err != nil && errors.Is(err, syscall.EAGAIN) {
		return &timeoutError{err: err}
	}
	return err
}

// timeoutError is fmt.Errorf("%w: %w", os.ErrDeadlineExceeded, err).
type timeoutError struct{ err error }

func (e *timeoutError) Error() string   { return os.ErrDeadlineExceeded.Error() + ": " + e.err.Error() }
func (e *timeoutError) Unwrap() []error { return []error{os.ErrDeadlineExceeded, e.err} }
