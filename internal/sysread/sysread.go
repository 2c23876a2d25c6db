// Package sysread reads the small files of /proc and cgroupfs on a
// container's start path (the hook's resolve step, the agent's check of
// a registration) with plain system calls: open, read until the end,
// close. os.Open probes every new file for the runtime's poller (fcntl,
// a refused epoll_ctl, fcntl back) and os.ReadFile stats it for a size
// these files do not report: five calls these reads do not need.
package sysread

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// chunk is the first read's size: every file read here fits.
const chunk = 512

// ReadFile returns the contents of the file at path, at most limit
// bytes (more is an error). Errors are *os.PathError, as os.ReadFile's:
// errors.Is(err, fs.ErrNotExist) holds for a missing file.
func ReadFile(path string, limit int) ([]byte, error) {
	fd, err := open(path)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	buf := make([]byte, 0, min(chunk, limit+1))
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than %d bytes", limit)}
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
				return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than %d bytes", limit)}
			}
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// open opens path read-only, close-on-exec, retrying on EINTR.
func open(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if !errors.Is(err, syscall.EINTR) {
			return fd, err
		}
	}
}
