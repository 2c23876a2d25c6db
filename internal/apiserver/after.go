package apiserver

import (
	"context"
	"time"
)

// afterKey keys a request's afterAnswer in its context.
type afterKey struct{}

// afterAnswer is the work a handler left for after its answer, and the
// server's steps of the request (known by then).
type afterAnswer struct {
	fs    []func()
	steps Steps
}

// Steps are the server's own steps of one request, around its handler:
// from accept to the start of the connection's goroutine, the read and
// decoding of the request (the wait for its bytes included), and the
// encoding and writing of the answer. With the handler's own time they
// make up the request's time in the agent (scripts/bench.sh reads them
// from the registration's log line).
type Steps struct {
	Start, Read, Answer time.Duration
}

// StepsOf returns the steps of the request that ctx serves, for a
// function AfterAnswer runs: complete once the answer is written; ok
// false outside a request served here.
func StepsOf(ctx context.Context) (Steps, bool) {
	a, ok := ctx.Value(afterKey{}).(*afterAnswer)
	if !ok {
		return Steps{}, false
	}
	return a.steps, true
}

// Serving reports whether ctx serves a request here: AfterAnswer then
// defers its functions until the answer is written, instead of running
// them at once.
func Serving(ctx context.Context) bool {
	_, ok := ctx.Value(afterKey{}).(*afterAnswer)
	return ok
}

// AfterAnswer runs f once the answer to the request that ctx serves has
// been written (or lost), in the connection's goroutine, in the order of
// the calls; outside a request served here, at once. A handler leaves
// there what its client need not wait for, such as its log line: a hook
// waits for the answer on a container's start path.
func AfterAnswer(ctx context.Context, f func()) {
	if a, ok := ctx.Value(afterKey{}).(*afterAnswer); ok {
		a.fs = append(a.fs, f)
		return
	}
	f()
}

// withAfterAnswer is ctx carrying a request's after-answer list, and the
// function that records the request's steps and runs the list.
func withAfterAnswer(ctx context.Context) (context.Context, func(Steps)) {
	a := &afterAnswer{}
	return context.WithValue(ctx, afterKey{}, a), func(s Steps) {
		a.steps = s
		for _, f := range a.fs {
			f()
		}
		a.fs = nil
	}
}
