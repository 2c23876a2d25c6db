package agent

import (
	"runtime"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// ReaderThreadName names the thread the kernel's records are read on:
// RunEvents runs on a thread of its own, so that its CPU and the time
// it waited for a CPU are the reader's alone (/proc/PID/task/TID/stat
// and schedstat, `top -H`), and so that it can run at a priority of
// its own (Config.ReaderNice). When the reader waits for a CPU longer
// than the ring buffer holds records for, the kernel loses records;
// make bench reports that wait for each step of its events bench.
const ReaderThreadName = "ocigate-events"

// ownThread locks the calling goroutine to its thread, names the thread
// and sets its nice value (0: left as it is); release gives the thread
// its name and nice value back and unlocks it. A nice value the kernel
// refuses (no CAP_SYS_NICE) is logged, and the reader runs on as the
// rest of the agent.
func ownThread(name string, nice int, log *zap.Logger) (release func()) {
	runtime.LockOSThread()
	oldName := threadName()
	setThreadName(name)
	oldNice, niced := 0, false
	if nice != 0 {
		var err error
		if oldNice, err = threadNice(); err == nil {
			err = unix.Setpriority(unix.PRIO_PROCESS, 0, nice)
		}
		if err != nil {
			log.Warn("the events reader runs at the agent's priority: its nice value was not set "+
				"(the kernel's records may be lost sooner when the CPUs are busy)", zap.Int("nice", nice), zap.Error(err))
		}
		niced = err == nil
	}
	return func() {
		if niced {
			_ = unix.Setpriority(unix.PRIO_PROCESS, 0, oldNice)
		}
		setThreadName(oldName)
		runtime.UnlockOSThread()
	}
}

// threadNice is the calling thread's nice value. The system call
// answers 20 - nice, so that no answer is negative.
func threadNice() (int, error) {
	v, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return 0, err
	}
	return 20 - v, nil
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
