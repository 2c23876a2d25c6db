package main

import (
	"errors"
	"os"
	"sync/atomic"
	"time"
)

// deadlineGrace lets work bounded by the hook's deadline report its own
// error before the watchdog gives up on it.
const deadlineGrace = 100 * time.Millisecond

// errHookDeadline is the result the watchdog reports.
var errHookDeadline = errors.New("no result within the hook's --timeout")

// watchdog ends the hook when its work outlives --timeout: reading the
// state from a runtime that never closes stdin, a bundle on a hung file
// system or anything else must not hold up the container's start. A
// blocked system call cannot be cancelled, so the watchdog does not wait
// for the work: it says what the deadline means and ends the process.
//
// The work runs on the main goroutine and the watchdog is a timer, which
// starts a goroutine only when it fires: a hook that starts none pays
// for no other thread's wake-up on the container's start path.
type watchdog struct {
	timer   *time.Timer
	claimed atomic.Bool // by the first of the work's end and the timer
}

// startWatchdog ends the process with giveUp's status after d, unless
// finish came first.
func startWatchdog(d time.Duration, giveUp func() int) *watchdog {
	w := &watchdog{}
	w.timer = time.AfterFunc(d, func() {
		if w.claimed.CompareAndSwap(false, true) {
			os.Exit(giveUp())
		}
	})
	return w
}

// finish claims the result for the work that just ended. When the
// watchdog fired first, it has the result and is ending the process:
// finish then never returns.
func (w *watchdog) finish() {
	w.timer.Stop()
	if !w.claimed.CompareAndSwap(false, true) {
		select {}
	}
}
