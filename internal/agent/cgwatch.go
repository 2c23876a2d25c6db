package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/internal/workload"
)

// cgroupWatch learns, within tens of milliseconds, that a registered
// cgroup has emptied: the kernel marks a cgroup's cgroup.events modified
// when its "populated" key changes, which inotify reports. The agent then
// drops the workload once its cgroup is removed, as Unregister would, so
// a container needs no poststop hook to leave promptly; the periodic
// check (Reconcile) stays for what a watch misses. A removed cgroup
// reports nothing more (no IN_IGNORED on cgroupfs), so every watch is
// removed with its workload: a watch pins the file's inode.
type cgroupWatch struct {
	f    *os.File // the inotify instance (non-blocking: read through the poller)
	mu   sync.Mutex
	byWD map[int32]uint64 // watch -> cgroup id
	byCG map[uint64]int32 // cgroup id -> watch
}

// newCgroupWatch opens an inotify instance; nil when the kernel refuses
// one (the periodic check then does all the work).
func newCgroupWatch() (*cgroupWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	return &cgroupWatch{f: os.NewFile(uintptr(fd), "inotify"), byWD: map[int32]uint64{}, byCG: map[uint64]int32{}}, nil
}

// add watches the cgroup.events file of the cgroup dir (cgroup id cg).
func (c *cgroupWatch) add(cg uint64, dir string) error {
	if c == nil {
		return nil
	}
	sc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var wd int
	var werr error
	if err := sc.Control(func(fd uintptr) {
		wd, werr = unix.InotifyAddWatch(int(fd), filepath.Join(dir, "cgroup.events"), unix.IN_MODIFY)
	}); err != nil {
		return err
	}
	if werr != nil {
		return os.NewSyscallError("inotify_add_watch", werr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byCG[cg]; ok && old != int32(wd) {
		c.rmLocked(old)
	}
	c.byWD[int32(wd)], c.byCG[cg] = cg, int32(wd)
	return nil
}

// remove stops watching cgroup cg (nothing when it was not watched).
func (c *cgroupWatch) remove(cg uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if wd, ok := c.byCG[cg]; ok {
		delete(c.byCG, cg)
		c.rmLocked(wd)
	}
}

// rmLocked removes watch wd. The caller holds c.mu.
func (c *cgroupWatch) rmLocked(wd int32) {
	delete(c.byWD, wd)
	if sc, err := c.f.SyscallConn(); err == nil {
		_ = sc.Control(func(fd uintptr) { _, _ = unix.InotifyRmWatch(int(fd), uint32(wd)) })
	}
}

// len is the number of watches.
func (c *cgroupWatch) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byCG)
}

// run reads events until the instance is closed, calling changed with
// the cgroup id of each modified file, or with 0 when the kernel's queue
// overflowed (events were lost).
func (c *cgroupWatch) run(changed func(cg uint64)) error {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := c.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				changed(0)
				continue
			}
			c.mu.Lock()
			cg, ok := c.byWD[ev.Wd]
			c.mu.Unlock()
			if ok && ev.Mask&unix.IN_MODIFY != 0 {
				changed(cg)
			}
		}
	}
}

// close ends run.
func (c *cgroupWatch) close() error {
	if c == nil {
		return nil
	}
	return c.f.Close()
}

// watchCgroup watches w's cgroup while RunCgroupWatch runs; a watch
// refused (the inotify watch limit reached) leaves the workload to the
// periodic check. The caller holds a.mu.
func (a *Agent) watchCgroup(w *workload.Workload) {
	if a.cgw == nil {
		return
	}
	root, err := a.resolver.Root()
	if err == nil {
		err = a.cgw.add(w.CgroupID, filepath.Join(root, filepath.FromSlash(w.CgroupPath)))
	}
	if err != nil {
		a.stats.CgroupWatchErrors.Add(1)
		a.log.Debug("cgroup not watched; the periodic check covers it", zap.String("container", w.ContainerID), zap.Error(err))
	}
}

// rechecks are when a changed cgroup that was not found removed is looked
// at again: runtimes remove a stopped container's cgroup within
// milliseconds of its emptying; one kept longer is the periodic check's.
var rechecks = []time.Duration{25 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, time.Second, 3 * time.Second}

// RunCgroupWatch drops workloads whose cgroup was removed as soon as the
// kernel says their cgroup emptied, until ctx ends. It watches the
// workloads registered when it starts (restored ones too) and every one
// registered while it runs; without it (tests, or an inotify instance
// refused) the periodic check alone drops stopped containers.
func (a *Agent) RunCgroupWatch(ctx context.Context) {
	cgw, err := newCgroupWatch()
	if err != nil {
		a.log.Warn("cgroups not watched: stopped containers are dropped by the periodic check alone", zap.Error(err))
		return
	}
	a.mu.Lock()
	a.cgw = cgw
	for _, w := range a.reg.List() {
		a.watchCgroup(w)
	}
	a.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { _ = cgw.close() })
	defer stop()
	err = cgw.run(func(cg uint64) {
		if cg == 0 { // events lost: look at everything
			a.Reconcile()
			return
		}
		// Not removed yet (or removed while it was looked at: its
		// cgroup.events went between two reads): look again soon.
		if !a.dropRemoved(cgw, cg) {
			for _, d := range rechecks {
				time.AfterFunc(d, func() { a.dropRemoved(cgw, cg) })
			}
		}
	})
	a.mu.Lock()
	a.cgw = nil
	a.mu.Unlock()
	_ = cgw.close()
	if err != nil && ctx.Err() == nil {
		a.log.Error("cgroup watch stopped; the periodic check alone drops stopped containers", zap.Error(err))
	}
}

// dropRemoved drops the workload on cgroup cg when that cgroup was
// removed (or is another cgroup now), and reports whether nothing is
// left to look at: dropped, or no longer registered.
func (a *Agent) dropRemoved(cgw *cgroupWatch, cg uint64) bool {
	w, ok := a.reg.ByCgroup(cg)
	if !ok {
		cgw.remove(cg)
		return true
	}
	return a.dropIfGone(w, true)
}
