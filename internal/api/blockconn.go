package api

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// blockConn is a unix stream socket that a one-request client uses with
// plain blocking system calls. A short-lived process such as the hook
// then never starts the runtime's network poller (an epoll instance, an
// eventfd, a parked goroutine woken through it), which net.Dial costs a
// fresh process: about 0.15 ms of a round trip of about 2 ms here. The
// context's deadline becomes the socket's send and receive timeouts; its
// end (a cancel) shuts the socket down, which wakes a blocked read.
type blockConn struct {
	f    *os.File
	stop func() bool
}

// dialBlocking connects to the unix socket at path within ctx.
func dialBlocking(ctx context.Context, path string) (*blockConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := setTimeouts(fd, time.Until(dl)); err != nil {
			syscall.Close(fd)
			return nil, err
		}
	}
	err = connectUnix(fd, path)
	if err != nil {
		syscall.Close(fd)
		if errors.Is(err, syscall.EAGAIN) { // the send timeout passed in a full backlog
			err = os.ErrDeadlineExceeded
		}
		return nil, &os.PathError{Op: "connect", Path: path, Err: err}
	}
	c := &blockConn{f: os.NewFile(uintptr(fd), path)}
	c.stop = context.AfterFunc(ctx, c.shutdown)
	return c, nil
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

// shutdown ends both directions, waking a blocked read or write; the
// file's Control keeps its descriptor open meanwhile.
func (c *blockConn) shutdown() {
	if sc, err := c.f.SyscallConn(); err == nil {
		_ = sc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
	}
}

// Read reads from the socket; a receive timeout is os.ErrDeadlineExceeded,
// as a net.Conn's deadline.
func (c *blockConn) Read(b []byte) (int, error) {
	n, err := c.f.Read(b)
	return n, timeoutErr(err)
}

// Write writes to the socket; a send timeout is os.ErrDeadlineExceeded.
func (c *blockConn) Write(b []byte) (int, error) {
	n, err := c.f.Write(b)
	return n, timeoutErr(err)
}

// timeoutErr turns a socket timeout (EAGAIN on a blocking socket) into
// os.ErrDeadlineExceeded.
func timeoutErr(err error) error {
	if err != nil && errors.Is(err, syscall.EAGAIN) {
		return fmt.Errorf("%w: %w", os.ErrDeadlineExceeded, err)
	}
	return err
}

// Close stops watching the context and closes the socket.
func (c *blockConn) Close() error {
	c.stop()
	return c.f.Close()
}

// dialPolled connects to the unix socket at path with a non-blocking
// socket in the runtime's poller: a file with deadlines, as a net.Conn,
// for a long-lived stream (Subscribe) and without the net package, which
// the hook would otherwise link and initialise for nothing. A full
// backlog fails at once (EAGAIN), as net.Dial's unix connect does.
func dialPolled(ctx context.Context, path string) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	err = connectUnix(fd, path)
	if err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "connect", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// Listening reports whether an agent accepts connections on socket: nil
// when a connect succeeds (the connection is closed at once), else the
// connect's error (NotListening tells no agent from other failures). It
// costs a connect: no request, none of the agent's work.
func Listening(ctx context.Context, socket string) error {
	f, err := dialPolled(ctx, socket)
	if err != nil {
		return err
	}
	return f.Close()
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
