package wire

import (
	"errors"
	"os"
	"syscall"
	"time"

	"github.com/ocigate/ocigate/internal/errwrap"
)

// Register registers a container with the agent at socket and returns
// the agent's verdict; an answer with ok=false is returned with its
// error (the verdict's FailurePolicy says what the profile wants then).
// While no agent listens (NotListening) it tries again every
// WaitInterval, up to wait: an agent restarting has no socket for a
// moment. Each attempt ends at perCall after it starts or at deadline,
// whichever comes first; the wait too ends at deadline. The request goes
// in ProtocolVersion; an agent one version older refuses it in its own
// version, and Register sends it again once in that one.
func Register(socket string, g *Registration, wait, perCall time.Duration, deadline time.Time) (*Verdict, error) {
	req := &Request{Op: OpRegister, Register: g}
	var v *Verdict
	err := Waiting(socket, wait, func() (err error) {
		v, err = call(socket, req, earlier(time.Now().Add(perCall), deadline))
		return err
	}, func(d time.Duration) error { return sleep(d, deadline) })
	return v, err
}

// Unregister asks the agent at socket to forget a container, once (no
// agent listening is an error at once), by deadline; versions are agreed
// as Register's.
func Unregister(socket, containerID string, deadline time.Time) (*Verdict, error) {
	return call(socket, &Request{Op: OpUnregister, Unregister: &Unregistration{ContainerID: containerID}}, deadline)
}

// earlier is the earlier of a and b, b when it is zero (none).
func earlier(a, b time.Time) time.Time {
	if b.IsZero() || a.Before(b) {
		return a
	}
	return b
}

// sleep waits d, or until deadline (when set) and then fails with
// os.ErrDeadlineExceeded when that comes first.
func sleep(d time.Duration, deadline time.Time) error {
	if !deadline.IsZero() {
		if left := time.Until(deadline); left < d {
			time.Sleep(max(left, 0))
			return os.ErrDeadlineExceeded
		}
	}
	time.Sleep(d)
	return nil
}

// call sends req in ProtocolVersion and, when the agent refuses that in
// an older version spoken here, once more in that one.
func call(socket string, req *Request, deadline time.Time) (*Verdict, error) {
	sent := req.As(ProtocolVersion)
	v, err := callOnce(socket, sent, deadline)
	if older, ok := v.OlderVersion(sent.Version()); ok {
		v, err = callOnce(socket, req.As(older), deadline)
	}
	return v, err
}

// callOnce is one exchange of call.
func callOnce(socket string, req *Request, deadline time.Time) (*Verdict, error) {
	var v *Verdict
	err := Exchange(socket, req.Op, req.AppendJSON(nil), deadline, nil, func(body []byte) (err error) {
		v, err = ParseVerdict(body)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := v.Check(socket, req.Op); err != nil {
		return v, err
	}
	return v, nil
}

// Canceler ends an exchange before its deadline: package api's context.
type Canceler interface {
	// Err is why the exchange is to end: nil while it is not.
	Err() error
	// Watch arranges for c.Shutdown to be called when the exchange is
	// to end; Exchange calls the stop it returns when it is done.
	Watch(c *Conn) (stop func() bool)
}

// Exchange is one request to the agent at socket: it connects, sends
// body (the JSON of a request of op) and hands the answer's body to
// decode, all by deadline (none when zero) and, when cancel is not nil,
// until cancel ends it. A server may answer before it reads the request
// and hang up (the agent refuses a non-root peer so): its answer is
// read even when sending failed. The errors name the socket and op;
// one that says no agent listens satisfies NotListening.
func Exchange(socket, op string, body []byte, deadline time.Time, cancel Canceler, decode func([]byte) error) error {
	conn, err := dial(socket, deadline, cancel)
	if err != nil {
		return errwrap.Wrap("agent at "+socket+" is not reachable", err)
	}
	defer conn.Close()
	if cancel != nil {
		defer cancel.Watch(conn)()
	}
	werr := WriteFrame(conn, body)
	answer, err := ReadFrame(conn)
	if err == nil {
		err = decode(answer)
	}
	if err == nil {
		return nil
	}
	if werr != nil { // the agent hung up early and said nothing
		return errwrap.Wrap("send "+op+" to agent at "+socket, werr)
	}
	if cancel != nil && cancel.Err() != nil {
		err = errors.Join(cancel.Err(), err)
	}
	return errwrap.Wrap("agent at "+socket+" did not answer "+op, err)
}

// dial is Dial, unless cancel has ended the exchange already.
func dial(socket string, deadline time.Time, cancel Canceler) (*Conn, error) {
	if cancel != nil {
		if err := cancel.Err(); err != nil {
			return nil, err
		}
	}
	return Dial(socket, deadline)
}

// NotListening reports whether err, from a call to the agent, says that
// no agent listens on the socket: the socket (or its directory) does
// not exist, or nothing accepts on it. A starting agent is in this
// state until it is ready: it creates its socket last.
func NotListening(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// WaitInterval is how often Waiting tries again while no agent
// listens: a failed connect costs microseconds, and a caller learns that
// the agent is ready at most this long after it is.
const WaitInterval = 20 * time.Millisecond

// Waiting calls attempt, and again every WaitInterval while it fails
// because no agent listens on socket (NotListening), until it does
// something else or wait has passed; with wait <= 0 it is one attempt.
// Any other error — an answer with ok=false, an agent that took the
// connection and did not answer in time — ends the wait at once.
// pause(d) waits between attempts; its error ends the wait too.
func Waiting(socket string, wait time.Duration, attempt func() error, pause func(time.Duration) error) error {
	deadline := time.Now().Add(wait)
	for {
		err := attempt()
		if err == nil || !NotListening(err) || wait <= 0 {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errwrap.Wrap("no agent answered within "+wait.String(), err)
		}
		if err := pause(min(WaitInterval, left)); err != nil {
			return errwrap.Wrap("waiting for the agent at "+socket, err)
		}
	}
}
