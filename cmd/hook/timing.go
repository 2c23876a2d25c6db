package main

import (
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// timingEnv names the variable that asks the hook for its breakdown: its
// value is the wall-clock time (Unix nanoseconds) at which the launcher
// started the hook; the hook then prints how long each step took on one
// stderr line (test/bench/hookbench reads it). Runtimes never set it.
const timingEnv = "OCIGATE_HOOK_TIMING"

// timing records when the steps of one run ended; the zero value (no
// OCIGATE_HOOK_TIMING) records nothing.
type timing struct {
	launched, last time.Time
	steps          []string
}

// newTiming starts the record at main's entry, when asked for.
func newTiming() *timing {
	now := time.Now()
	ns, err := strconv.ParseInt(os.Getenv(timingEnv), 10, 64)
	if err != nil || ns <= 0 {
		return &timing{}
	}
	t := &timing{launched: time.Unix(0, ns), last: now}
	t.steps = append(t.steps, "start_us="+strconv.FormatInt(now.Sub(t.launched).Microseconds(), 10))
	return t
}

// mark ends the step named name.
func (t *timing) mark(name string) {
	if t == nil || t.launched.IsZero() {
		return
	}
	now := time.Now()
	t.steps = append(t.steps, name+"_us="+strconv.FormatInt(now.Sub(t.last).Microseconds(), 10))
	t.last = now
}

// print writes the record, with the time from launch to now, to w.
func (t *timing) print(w io.Writer) {
	if t == nil || t.launched.IsZero() {
		return
	}
	say(w, "ocigate-hook timing: "+strings.Join(t.steps, " ")+" total_us="+strconv.FormatInt(time.Since(t.launched).Microseconds(), 10))
}
