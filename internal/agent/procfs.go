package agent

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// procFS reads what /proc tells about a process: for processes the agent
// did not see start (they predate their workload's registration, or are
// the runtime that started a container) and for the cwd of a new one.
type procFS struct{ root string } // "" is /proc

// userHZ is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const userHZ = 100

const nsPerTick = uint64(1_000_000_000 / userHZ)

func (p procFS) path(pid uint32, name string) string {
	root := p.root
	if root == "" {
		root = "/proc"
	}
	// Appended, not filepath.Join'd: the agent builds one or two for
	// each exec it reads, and the parts are clean.
	b := make([]byte, 0, len(root)+len(name)+12)
	b = append(b, strings.TrimSuffix(root, "/")...)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(pid), 10)
	b = append(b, '/')
	b = append(b, name...)
	return string(b)
}

// exe is the process's executable, "" when it cannot be read.
func (p procFS) exe(pid uint32) string {
	s, err := os.Readlink(p.path(pid, "exe"))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(s, " (deleted)")
}

// cwd is the process's working directory, "" when it cannot be read.
// A process already reaped has none: for the agent's own /proc,
// kill(pid, 0) says so in a tenth of the time a readlink takes to fail
// (each new pid is a fresh failed lookup in /proc), and most processes
// of a build, /bin/true's kind, are gone by the time their exec is read.
func (p procFS) cwd(pid uint32) string {
	if p.root == "" && unix.Kill(int(pid), 0) == unix.ESRCH {
		return ""
	}
	s, err := os.Readlink(p.path(pid, "cwd"))
	if err != nil {
		return ""
	}
	return s
}

// arguments are argv[1:] joined by spaces, as Tetragon reports them.
func (p procFS) arguments(pid uint32) string {
	b, err := os.ReadFile(p.path(pid, "cmdline"))
	if err != nil || len(b) == 0 {
		return ""
	}
	parts := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return strings.Join(parts[1:], " ")
}

// stat is the process's parent and start (CLOCK_BOOTTIME, in clock
// ticks), from /proc/PID/stat.
func (p procFS) stat(pid uint32) (ppid uint32, startTicks uint64, ok bool) {
	var buf [statBufSize]byte
	b, err := readProcFile(p.path(pid, "stat"), buf[:])
	if err != nil {
		return 0, 0, false
	}
	// comm, in parentheses, may hold anything: the fields follow its
	// last ')'. Then: state ppid ... starttime is the 20th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f1, f19 := statFields(b[i+1:])
	pp, err1 := strconv.ParseUint(string(f1), 10, 32)
	st, err2 := strconv.ParseUint(string(f19), 10, 64)
	if f19 == nil || err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uint32(pp), st, true
}

// statFields are the 2nd and 20th space-separated fields of b (ppid and
// starttime after comm), nil when b has fewer; read in place, without
// splitting the whole line.
func statFields(b []byte) (f1, f19 []byte) {
	n := 0
	for len(b) > 0 {
		b = bytes.TrimLeft(b, " \n")
		if len(b) == 0 {
			break
		}
		end := bytes.IndexAny(b, " \n")
		if end < 0 {
			end = len(b)
		}
		switch n {
		case 1:
			f1 = b[:end]
		case 19:
			return f1, b[:end]
		}
		n++
		b = b[end:]
	}
	return nil, nil
}

// statBufSize holds any /proc/PID/stat: 52 numbers and a comm of at
// most 64 bytes.
const statBufSize = 1024

// readProcFile reads the small file path into buf, in three system calls
// (open, read, close): the agent reads /proc/PID/stat for each exec of a
// workload process, where os.ReadFile's five (and its poller's attempt
// to register the file) were a third of the agent's time in an exec loop.
// A file longer than buf is an error.
func readProcFile(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			return buf[:n], nil
		}
		n += m
	}
	return nil, fmt.Errorf("%s: longer than %d bytes", path, len(buf))
}

// uid is the process's real uid, from /proc/PID/status.
func (p procFS) uid(pid uint32) (uint32, bool) {
	b, err := os.ReadFile(p.path(pid, "status"))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			v, err := strconv.ParseUint(f[0], 10, 32)
			return uint32(v), err == nil
		}
	}
	return 0, false
}

// sameProcess reports whether pid is still the process that started at
// startNs (CLOCK_BOOTTIME ns): /proc knows the start to the clock tick.
func (p procFS) sameProcess(pid uint32, startNs uint64) bool {
	_, ticks, ok := p.stat(pid)
	return ok && (startNs == 0 || ticks == startNs/nsPerTick)
}

// procSnapshot is a process as /proc shows it.
type procSnapshot struct {
	ppid       uint32
	startTicks uint64
	uid        uint32
	binary     string
	arguments  string
	cwd        string
}

// snapshot reads pid; false when it is gone, or is no longer the process
// that started at startNs (0: whichever it is).
func (p procFS) snapshot(pid uint32, startNs uint64) (procSnapshot, bool) {
	ppid, ticks, ok := p.stat(pid)
	if !ok || startNs != 0 && ticks != startNs/nsPerTick {
		return procSnapshot{}, false
	}
	s := procSnapshot{ppid: ppid, startTicks: ticks, binary: p.exe(pid), arguments: p.arguments(pid), cwd: p.cwd(pid)}
	s.uid, _ = p.uid(pid)
	// Read again: a pid reused while it was read is another process.
	return s, p.sameProcess(pid, ticks*nsPerTick)
}
