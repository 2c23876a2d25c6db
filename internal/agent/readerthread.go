package agent

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ReaderThreadName names the thread the kernel's records are read on:
// RunEvents runs on a thread of its own, so that its CPU and the time
// it waited for a CPU are the reader's alone (/proc/PID/task/TID/stat
// and schedstat, `top -H`). When the reader waits for a CPU longer
// than the ring buffer holds records for, the kernel loses records;
// make bench reports that wait for each step of its events bench.
const ReaderThreadName = "ocigate-events"

// ownThread locks the calling goroutine to its thread and names the
// thread; release gives the thread its name back and unlocks it.
func ownThread(name string) (release func()) {
	runtime.LockOSThread()
	old := threadName()
	setThreadName(name)
	return func() {
		setThreadName(old)
		runtime.UnlockOSThread()
	}
}

// threadName is the calling thread's name (comm), "" if unknown.
func threadName() string {
	var buf [16]byte // TASK_COMM_LEN
	if unix.Prctl(unix.PR_GET_NAME, uintptr(unsafe.Pointer(&buf[0])), 0, 0, 0) != nil {
		return ""
	}
	return unix.ByteSliceToString(buf[:])
}

// setThreadName names the calling thread; a name the kernel refuses
// (none is, but for its length: it keeps 15 bytes) leaves it as it is.
func setThreadName(name string) {
	if name == "" {
		return
	}
	b, err := unix.BytePtrFromString(name)
	if err != nil {
		return
	}
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(b)), 0, 0, 0)
}
