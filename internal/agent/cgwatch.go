package agent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/internal/workload"
)

// cgroupWatch learns, as it happens, that a registered cgroup was
// removed: a runtime removes a stopped container's cgroup with rmdir,
// and the VFS reports the removal (IN_DELETE, with the directory's name)
// to an inotify watch on the parent directory. The agent then drops the
// workload, as Unregister would, so a container needs no poststop hook
// to leave promptly; the periodic check (Reconcile) stays for what a
// watch misses. A watch on the cgroup itself would not do: cgroupfs
// sends neither IN_DELETE_SELF nor IN_IGNORED for a removed cgroup, nor
// a change of its cgroup.events once it is being removed. Sibling
// cgroups (a pod's containers, a runtime's slice) share their parent's
// one watch.
type cgroupWatch struct {
	f      *os.File // the inotify instance (non-blocking: read through the poller)
	mu     sync.Mutex
	dirs   map[int32]*watchedDir // watch -> parent directory
	byPath map[string]int32      // parent directory -> watch
	byCG   map[uint64]cgroupName // cgroup id -> where it is watched
}

// watchedDir is a watched parent directory and the registered cgroups
// in it, by name.
type watchedDir struct {
	path     string
	children map[string]uint64
}

// cgroupName is a watched cgroup's parent watch and name.
type cgroupName struct {
	wd   int32
	name string
}

// newCgroupWatch opens an inotify instance; nil when the kernel refuses
// one (the periodic check then does all the work).
func newCgroupWatch() (*cgroupWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	return &cgroupWatch{f: os.NewFile(uintptr(fd), "inotify"), dirs: map[int32]*watchedDir{},
		byPath: map[string]int32{}, byCG: map[uint64]cgroupName{}}, nil
}

// add watches for the removal of cgroup directory dir (cgroup id cg).
func (c *cgroupWatch) add(cg uint64, dir string) error {
	if c == nil {
		return nil
	}
	parent, name := filepath.Dir(dir), filepath.Base(dir)
	c.mu.Lock()
	defer c.mu.Unlock()
	wd, ok := c.byPath[parent]
	if !ok {
		var err error
		if wd, err = c.addWatch(parent); err != nil {
			return err
		}
		if d, ok := c.dirs[wd]; ok { // the same directory by another path
			delete(c.byPath, d.path)
			d.path = parent
		} else {
			c.dirs[wd] = &watchedDir{path: parent, children: map[string]uint64{}}
		}
		c.byPath[parent] = wd
	}
	if old, ok := c.byCG[cg]; ok && old != (cgroupName{wd, name}) {
		c.rmLocked(cg)
	}
	if other, ok := c.dirs[wd].children[name]; ok && other != cg {
		delete(c.byCG, other) // a cgroup of that name registered before: gone
	}
	c.dirs[wd].children[name] = cg
	c.byCG[cg] = cgroupName{wd, name}
	return nil
}

// addWatch watches directory dir for removed subdirectories.
func (c *cgroupWatch) addWatch(dir string) (int32, error) {
	sc, err := c.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var wd int
	var werr error
	if err := sc.Control(func(fd uintptr) {
		wd, werr = unix.InotifyAddWatch(int(fd), dir, unix.IN_DELETE|unix.IN_ONLYDIR)
	}); err != nil {
		return 0, err
	}
	if werr != nil {
		return 0, os.NewSyscallError("inotify_add_watch "+dir, werr)
	}
	return int32(wd), nil
}

// remove stops watching cgroup cg (nothing when it was not watched).
func (c *cgroupWatch) remove(cg uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rmLocked(cg)
}

// rmLocked stops watching cgroup cg, and its parent directory when no
// other watched cgroup is in it. The caller holds c.mu.
func (c *cgroupWatch) rmLocked(cg uint64) {
	at, ok := c.byCG[cg]
	if !ok {
		return
	}
	delete(c.byCG, cg)
	d := c.dirs[at.wd]
	if d.children[at.name] == cg {
		delete(d.children, at.name)
	}
	if len(d.children) > 0 {
		return
	}
	delete(c.dirs, at.wd)
	delete(c.byPath, d.path)
	if sc, err := c.f.SyscallConn(); err == nil {
		_ = sc.Control(func(fd uintptr) { _, _ = unix.InotifyRmWatch(int(fd), uint32(at.wd)) })
	}
}

// len is the number of cgroups watched.
func (c *cgroupWatch) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byCG)
}

// run reads events until the instance is closed, calling removed with
// the cgroup id of each watched cgroup removed, or with 0 when the
// kernel's queue overflowed (events were lost).
func (c *cgroupWatch) run(removed func(cg uint64)) error {
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
			name := eventName(buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)])
			off += unix.SizeofInotifyEvent + int(ev.Len)
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0:
				removed(0)
			case ev.Mask&unix.IN_DELETE != 0:
				if cg, ok := c.child(ev.Wd, name); ok {
					removed(cg)
				}
			case ev.Mask&unix.IN_IGNORED != 0: // the parent itself went
				for _, cg := range c.dropDir(ev.Wd) {
					removed(cg)
				}
			}
		}
	}
}

// eventName is an inotify event's name field without its NUL padding.
func eventName(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// child is the watched cgroup named name in the directory of watch wd.
func (c *cgroupWatch) child(wd int32, name string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.dirs[wd]
	if !ok {
		return 0, false
	}
	cg, ok := d.children[name]
	return cg, ok
}

// dropDir forgets the directory of watch wd, which the kernel removed,
// and returns the cgroups that were watched in it.
func (c *cgroupWatch) dropDir(wd int32) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.dirs[wd]
	if !ok {
		return nil
	}
	delete(c.dirs, wd)
	delete(c.byPath, d.path)
	var gone []uint64
	for _, cg := range d.children {
		delete(c.byCG, cg)
		gone = append(gone, cg)
	}
	return gone
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

// RunCgroupWatch drops workloads whose cgroup was removed as soon as the
// kernel says so, until ctx ends. It watches the
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
		a.dropRemoved(cgw, cg)
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
