// Package sysread reads the small files of a container's start path
// (/proc and cgroupfs in the hook's resolve step and the agent's check of
// a registration, the bundle's config.json) with plain system calls:
// open, read until the end, close. os.Open probes every new file for
// the runtime's poller (fcntl, a refused epoll_ctl, fcntl back; the first
// one also creates the poller) and os.ReadFile stats it for a size these
// files do not report: calls these reads do not need.
package sysread

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// chunk is the first read's size: every file read here fits.
const chunk = 512

// ReadFile returns the contents of the file at path, at most limit
// bytes (more is an error). Errors are *os.PathError, as os.ReadFile's:
// errors.Is(err, fs.ErrNotExist) holds for a missing file.
func ReadFile(path string, limit int) ([]byte, error) {
	fd, err := openFlags(path, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	buf, err := readFd(fd, path, limit, chunk)
	var tl *TooLargeError
	if errors.As(err, &tl) {
		err = &os.PathError{Op: "read", Path: path, Err: errors.New("larger than " + strconv.Itoa(limit) + " bytes")}
	}
	return buf, err
}

// readFd reads fd (path's) to its end, starting with a buffer of size
// bytes; more than limit bytes are a *TooLargeError.
func readFd(fd int, path string, limit, size int) ([]byte, error) {
	buf := make([]byte, 0, min(size, limit+1))
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, &TooLargeError{Path: path, Limit: limit, Size: -1}
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			if len(buf) > limit {
				return nil, &TooLargeError{Path: path, Limit: limit, Size: -1}
			}
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// openFlags opens path read-only, close-on-exec, with flags besides.
func openFlags(path string, flags int) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|flags, 0)
		if !errors.Is(err, syscall.EINTR) {
			return fd, err
		}
	}
}

// NotRegularError is ReadRegular's error for a file that is not a
// regular one (a FIFO, a device, a directory).
type NotRegularError struct {
	Path string
	Mode fs.FileMode // its type bits
}

func (e *NotRegularError) Error() string {
	return e.Path + " is not a regular file (mode " + e.Mode.String() + ")"
}

// TooLargeError is ReadRegular's error for a file larger than its limit.
type TooLargeError struct {
	Path  string
	Limit int
	Size  int64 // as fstat reported it, or -1 when the file grew while read
}

func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return e.Path + " exceeds " + strconv.Itoa(e.Limit) + " bytes"
	}
	return e.Path + " exceeds " + strconv.Itoa(e.Limit) + " bytes (size " + strconv.FormatInt(e.Size, 10) + ")"
}

// ReadRegular reads path, a regular file of at most limit bytes (a
// runtime bundle's config.json), in one read and the one that sees its
// end, where fstat's size holds.
// The open does not block on a FIFO, and the file's type is checked on
// the opened descriptor, so nothing can swap it between check and read.
// A file that is no regular one is a *NotRegularError, a larger one a
// *TooLargeError.
func ReadRegular(path string, limit int) ([]byte, error) {
	fd, err := openFlags(path, syscall.O_NONBLOCK)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, &NotRegularError{Path: path, Mode: typeBits(st.Mode)}
	}
	if st.Size > int64(limit) {
		return nil, &TooLargeError{Path: path, Limit: limit, Size: st.Size}
	}
	// The size is only a hint: the file may grow, or report 0. One byte
	// more than it says lets the first read take it all.
	return readFd(fd, path, limit, int(st.Size)+1)
}

// typeBits is the fs.FileMode type of a stat mode.
func typeBits(mode uint32) fs.FileMode {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		return fs.ModeDir
	case syscall.S_IFIFO:
		return fs.ModeNamedPipe
	case syscall.S_IFLNK:
		return fs.ModeSymlink
	case syscall.S_IFSOCK:
		return fs.ModeSocket
	case syscall.S_IFBLK:
		return fs.ModeDevice
	case syscall.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	}
	return fs.ModeIrregular
}
