package apiserver

import "context"

// afterKey keys a request's afterAnswer in its context.
type afterKey struct{}

// afterAnswer is the work a handler left for after its answer.
type afterAnswer struct{ fs []func() }

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
// function that runs it.
func withAfterAnswer(ctx context.Context) (context.Context, func()) {
	a := &afterAnswer{}
	return context.WithValue(ctx, afterKey{}, a), func() {
		for _, f := range a.fs {
			f()
		}
		a.fs = nil
	}
}
