package api

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// SubscribeDialTimeout bounds sending the request (a unix socket's
// connect does not wait: it succeeds or fails at once).
const SubscribeDialTimeout = 5 * time.Second

// Subscribe streams events from the agent at socket: fn gets each frame
// in order. It returns nil after the frame marked End, ctx's error when
// ctx ends first, fn's error when fn fails, and an error naming the
// socket when the agent refuses or the stream breaks. The protocol
// version is agreed as Call does.
func Subscribe(ctx context.Context, socket string, sub *Subscription, fn func(*EventFrame) error) error {
	req := &Request{Op: OpSubscribe, Subscribe: sub}
	sent := req.As(ProtocolVersion)
	conn, first, err := openStream(ctx, socket, sent)
	if v, ok := olderVersion(sent, first); ok {
		conn.Close()
		conn, first, err = openStream(ctx, socket, req.As(v))
	}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	resp := first
	for {
		if resp.Events == nil {
			return errors.New("agent sent a stream frame without events")
		}
		if err := fn(resp.Events); err != nil {
			return err
		}
		if resp.Events.End {
			return nil
		}
		if resp, err = readFrame(ctx, conn, socket, nil); err != nil {
			return err
		}
	}
}

// openStream connects, sends req and reads the stream's first frame. The
// connection is returned whenever it was made, also with a refusal.
func openStream(ctx context.Context, socket string, req *Request) (*os.File, *Response, error) {
	conn, err := dialPolled(ctx, socket)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("agent at %s is not reachable: %w", socket, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetWriteDeadline(time.Now().Add(SubscribeDialTimeout))
	werr := WriteMessage(conn, req)
	resp, err := readFrame(ctx, conn, socket, werr)
	return conn, resp, err
}

// readFrame reads one message of a stream; werr is the error of sending
// the request, if any. A refusal is returned with its error.
func readFrame(ctx context.Context, conn *os.File, socket string, werr error) (*Response, error) {
	var resp Response
	if err := ReadMessage(conn, &resp); err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case werr != nil:
			return nil, fmt.Errorf("send subscribe to agent at %s: %w", socket, werr)
		}
		return nil, fmt.Errorf("event stream from agent at %s broke: %w", socket, err)
	}
	if err := checkAnswer(socket, OpSubscribe, &resp); err != nil {
		return &resp, err
	}
	return &resp, nil
}
