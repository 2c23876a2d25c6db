// Package errwrap wraps errors as fmt.Errorf's %w does, for the packages
// the hook links: a hook is a fresh process on every container's start,
// and it pays for the code it links at its start (fmt's printer and the
// reflection behind it: tens of microseconds here). Messages are built
// by concatenation, with strconv.Quote for what %q would quote.
package errwrap

// wrapped is an error with its own message that unwraps to err.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// Wrap is fmt.Errorf("%s: %w", prefix, err).
func Wrap(prefix string, err error) error {
	return &wrapped{msg: prefix + ": " + err.Error(), err: err}
}

// Message is an error that says msg, which the caller built around
// err's message, and unwraps to err: fmt.Errorf with %w elsewhere than
// at the end.
func Message(msg string, err error) error {
	return &wrapped{msg: msg, err: err}
}
