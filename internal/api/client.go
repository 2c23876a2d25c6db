package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/ocigate/ocigate/internal/plainjson"
)

// Call sends one request to the agent at socket and returns its response.
// The context's deadline bounds the dial, the write and the read. An
// answer with ok=false is returned as an error. The request goes in
// ProtocolVersion; an agent one version older refuses it in its own
// version, and Call sends it again once in that one (version.go).
func Call(ctx context.Context, socket string, req *Request) (*Response, error) {
	return call(ctx, socket, req, false)
}

// call is Call; brief decodes only the answer's verdict (verdict).
func call(ctx context.Context, socket string, req *Request, brief bool) (*Response, error) {
	sent := req.As(ProtocolVersion)
	resp, err := callOnce(ctx, socket, sent, brief)
	if v, ok := olderVersion(sent, resp); ok {
		resp, err = callOnce(ctx, socket, req.As(v), brief)
	}
	return resp, err
}

// verdict is the part of a Response that CallWaitingVerdict decodes.
type verdict struct {
	Protocol      int    `json:"protocol,omitempty"`
	OK            bool   `json:"ok"`
	Error         string `json:"error,omitempty"`
	FailurePolicy string `json:"failure_policy,omitempty"`
}

// readAnswer reads the answer from conn into resp, all of it or, brief,
// only its verdict.
func readAnswer(conn io.Reader, resp *Response, brief bool) error {
	if !brief {
		return ReadMessage(conn, resp)
	}
	v, err := readVerdict(conn)
	if err != nil {
		return err
	}
	resp.Protocol, resp.OK, resp.Error, resp.FailurePolicy = v.Protocol, v.OK, v.Error, v.FailurePolicy
	return nil
}

// readVerdict reads one framed answer's verdict. A plain answer (an
// acceptance: internal/plainjson's subset) is read without
// encoding/json, whose decoders a fresh hook would build by reflection
// for this one message (~45 us of its round trip); anything else (a
// refusal's quoted error, say) is decoded by ReadMessage's rules.
func readVerdict(conn io.Reader) (*verdict, error) {
	body, err := readFrameBody(conn)
	if err != nil {
		return nil, err
	}
	if v, ok := plainVerdict(body); ok {
		return v, nil
	}
	var v verdict
	if err := decodeBody(body, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// plainVerdict reads a verdict of plainjson's subset; ok false: the
// body is not one, and encoding/json decodes it
// (FuzzPlainVerdictMatchesEncodingJSON).
func plainVerdict(body []byte) (*verdict, bool) {
	var v verdict
	s := plainjson.New(body)
	ok := s.Fields(map[string]func() bool{
		"protocol":       s.IntInto(&v.Protocol),
		"ok":             s.BoolInto(&v.OK),
		"error":          s.StrInto(&v.Error),
		"failure_policy": s.StrInto(&v.FailurePolicy),
	})
	return &v, ok && s.End()
}

// olderVersion reports whether resp refuses sent for its protocol version
// in an older version that this build speaks too, and which: the request
// is then sent again in that version. An agent of version 2 or later says
// its version in the refusal; one of version 1 says nothing of versions
// but refuses the unknown field "protocol".
func olderVersion(sent *Request, resp *Response) (int, bool) {
	if resp == nil || resp.OK {
		return 0, false
	}
	v := resp.Version()
	if resp.Protocol == 0 && !strings.Contains(resp.Error, `unknown field "protocol"`) {
		return 0, false
	}
	return v, v < sent.Version() && Speaks(v)
}

// checkAnswer returns the error of an answer: a refusal, or a version
// this build does not speak.
func checkAnswer(socket, op string, resp *Response) error {
	if !resp.OK {
		return fmt.Errorf("agent refused %s: %s", op, resp.Error)
	}
	if v := resp.Version(); !Speaks(v) {
		return &VersionError{Peer: "the agent at " + socket, Self: "this client", Got: v}
	}
	return nil
}

// callOnce is one exchange of Call.
func callOnce(ctx context.Context, socket string, req *Request, brief bool) (*Response, error) {
	conn, err := dialBlocking(ctx, socket)
	if err != nil {
		return nil, fmt.Errorf("agent at %s is not reachable: %w", socket, err)
	}
	defer conn.Close()
	werr := WriteMessage(conn, req)
	var resp Response
	if err := readAnswer(conn, &resp, brief); err != nil {
		if werr != nil { // the agent hung up early and said nothing
			return nil, fmt.Errorf("send %s to agent at %s: %w", req.Op, socket, werr)
		}
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return nil, fmt.Errorf("agent at %s did not answer %s: %w", socket, req.Op, err)
	}
	if err := checkAnswer(socket, req.Op, &resp); err != nil {
		return &resp, err
	}
	return &resp, nil
}

// NotListening reports whether err, from Call or Subscribe, says that no
// agent listens on the socket: the socket (or its directory) does not
// exist, or nothing accepts on it. A starting agent is in this state
// until it is ready: it creates its socket last.
func NotListening(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// WaitInterval is how often CallWaiting tries again while no agent
// listens: a failed connect costs microseconds, and a caller learns that
// the agent is ready at most this long after it is.
const WaitInterval = 20 * time.Millisecond

// CallWaiting is Call, tried again every WaitInterval while no agent
// listens on socket (NotListening), until one answers or wait has passed;
// with wait <= 0 it is one Call. Each call is bounded by perCall, also
// the one started just before wait ends. Any other error — an answer
// with ok=false, an agent that took the connection and did not answer
// in time — ends the wait at once. ctx ends everything.
func CallWaiting(ctx context.Context, socket string, req *Request, wait, perCall time.Duration) (*Response, error) {
	return callWaiting(ctx, socket, req, wait, perCall, false)
}

// CallWaitingVerdict is CallWaiting for a caller that needs only the
// answer's verdict: Protocol, OK, Error and FailurePolicy. The rest (a
// registration's workload) is skipped, not decoded, which spares a
// short-lived client such as the hook building encoding/json's decoders
// for types it would throw away (about 0.1 ms in a fresh process).
func CallWaitingVerdict(ctx context.Context, socket string, req *Request, wait, perCall time.Duration) (*Response, error) {
	return callWaiting(ctx, socket, req, wait, perCall, true)
}

// callWaiting is CallWaiting; brief as call's.
func callWaiting(ctx context.Context, socket string, req *Request, wait, perCall time.Duration, brief bool) (*Response, error) {
	deadline := time.Now().Add(wait)
	for {
		cctx, cancel := context.WithTimeout(ctx, perCall)
		resp, err := call(cctx, socket, req, brief)
		cancel()
		if err == nil || !NotListening(err) || wait <= 0 {
			return resp, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("no agent answered within %v: %w", wait, err)
		}
		t := time.NewTimer(min(WaitInterval, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for the agent at %s: %w", socket, ctx.Err())
		case <-t.C:
		}
	}
}
