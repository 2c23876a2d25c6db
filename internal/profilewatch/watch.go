// Package profilewatch tells when a profiles directory changes: inotify
// on the directory (files added, written, renamed or removed), debounced,
// plus SIGHUP.
package profilewatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Debounce collects bursts of changes (an editor's write and rename).
const Debounce = 250 * time.Millisecond

const watchMask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_CREATE |
	unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ATTRIB

// Watch calls reload after each change of dirs (debounced) and on SIGHUP,
// until ctx ends. Directories that do not exist yet are looked for every
// retry interval and watched once they appear.
func Watch(ctx context.Context, dirs []string, reload func(why string), retry time.Duration) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	changes := make(chan string, 1)
	notify := func(why string) {
		select {
		case changes <- why:
		default:
		}
	}
	watched := map[string]bool{}
	// addWatches watches the directories that exist; one that appears
	// after the start is a change to load.
	addWatches := func(started bool) {
		for _, d := range dirs {
			if watched[d] {
				continue
			}
			if _, err := unix.InotifyAddWatch(fd, d, watchMask); err == nil {
				if started {
					notify("directory " + d + " appeared")
				}
				watched[d] = true
			}
		}
	}
	addWatches(false)
	var lost atomic.Bool // a watched directory went away: watch again when it is back
	go readEvents(f, notify, func() { lost.Store(true) })

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(retry)
	defer tick.Stop()
	var pending string
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			reload("SIGHUP")
		case why := <-changes:
			pending, fire = why, time.After(Debounce)
		case <-fire:
			fire = nil
			reload(pending)
		case <-tick.C:
			if lost.Swap(false) {
				watched = map[string]bool{}
			}
			addWatches(true)
		}
	}
}

// readEvents turns inotify records into notifications until f is closed.
func readEvents(f *os.File, notify func(string), lost func()) {
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			continue
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafePointer(buf[off:]))
			if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0 {
				lost()
			}
			notify("profiles directory changed")
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}
