package api

import (
	"context"
	"fmt"
	"time"

	"github.com/ocigate/ocigate/internal/api/wire"
)

// Call sends one request to the agent at socket and returns its response.
// The context's deadline bounds the dial, the write and the read. An
// answer with ok=false is returned as an error. The request goes in
// ProtocolVersion; an agent one version older refuses it in its own
// version, and Call sends it again once in that one (version.go).
func Call(ctx context.Context, socket string, req *Request) (*Response, error) {
	return call(ctx, socket, req, false)
}

// call is Call; brief decodes only the answer's verdict
// (wire.ParseVerdict).
func call(ctx context.Context, socket string, req *Request, brief bool) (*Response, error) {
	sent := req.As(ProtocolVersion)
	resp, err := callOnce(ctx, socket, sent, brief)
	if v, ok := olderVersion(sent, resp); ok {
		resp, err = callOnce(ctx, socket, req.As(v), brief)
	}
	return resp, err
}

// verdictOf is the verdict of resp; nil when resp is.
func verdictOf(resp *Response) *wire.Verdict {
	if resp == nil {
		return nil
	}
	return &wire.Verdict{Protocol: resp.Protocol, OK: resp.OK, Error: resp.Error, FailurePolicy: resp.FailurePolicy}
}

// decodeAnswer decodes an answer's body into resp, all of it or, brief,
// only its verdict.
func decodeAnswer(body []byte, resp *Response, brief bool) error {
	if !brief {
		return decodeBody(body, resp)
	}
	v, err := wire.ParseVerdict(body)
	if err != nil {
		return err
	}
	resp.Protocol, resp.OK, resp.Error, resp.FailurePolicy = v.Protocol, v.OK, v.Error, v.FailurePolicy
	return nil
}

// olderVersion is wire.Verdict.OlderVersion for a response to sent.
func olderVersion(sent *Request, resp *Response) (int, bool) {
	return verdictOf(resp).OlderVersion(sent.Version())
}

// checkAnswer returns the error of an answer: a refusal, or a version
// this build does not speak (wire.Verdict.Check).
func checkAnswer(socket, op string, resp *Response) error {
	return verdictOf(resp).Check(socket, op)
}

// callOnce is one exchange of Call (wire.Exchange), ended by ctx.
func callOnce(ctx context.Context, socket string, req *Request, brief bool) (*Response, error) {
	body, err := encode(req)
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	var resp Response
	dl, _ := ctx.Deadline()
	err = wire.Exchange(socket, req.Op, body, dl, ctxCancel{ctx}, func(b []byte) error { return decodeAnswer(b, &resp, brief) })
	if err != nil {
		return nil, err
	}
	if err := checkAnswer(socket, req.Op, &resp); err != nil {
		return &resp, err
	}
	return &resp, nil
}

// NotListening reports whether err, from Call or Subscribe, says that no
// agent listens on the socket (wire.NotListening).
func NotListening(err error) bool { return wire.NotListening(err) }

// WaitInterval is how often CallWaiting tries again while no agent
// listens (wire.WaitInterval).
const WaitInterval = wire.WaitInterval

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
// registration's workload) is skipped, not decoded (wire.ParseVerdict).
// The hook itself calls wire.Register, its context-free twin.
func CallWaitingVerdict(ctx context.Context, socket string, req *Request, wait, perCall time.Duration) (*Response, error) {
	return callWaiting(ctx, socket, req, wait, perCall, true)
}

// callWaiting is CallWaiting (wire.Waiting); brief as call's.
func callWaiting(ctx context.Context, socket string, req *Request, wait, perCall time.Duration, brief bool) (*Response, error) {
	var resp *Response
	err := wire.Waiting(socket, wait, func() (err error) {
		cctx, cancel := context.WithTimeout(ctx, perCall)
		defer cancel()
		resp, err = call(cctx, socket, req, brief)
		return err
	}, func(d time.Duration) error { return pause(ctx, d) })
	return resp, err
}

// pause waits d or until ctx ends, and then returns ctx's error.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
