package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// SubscribeDialTimeout bounds connecting and sending the request.
const SubscribeDialTimeout = 5 * time.Second

// Subscribe streams events from the agent at socket: fn gets each frame
// in order. It returns nil after the frame marked End, ctx's error when
// ctx ends first, fn's error when fn fails, and an error naming the
// socket when the agent refuses or the stream breaks.
func Subscribe(ctx context.Context, socket string, sub *Subscription, fn func(*EventFrame) error) error {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, SubscribeDialTimeout)
	conn, err := d.DialContext(dctx, "unix", socket)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("agent at %s is not reachable: %w", socket, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetWriteDeadline(time.Now().Add(SubscribeDialTimeout))
	werr := WriteMessage(conn, &Request{Op: OpSubscribe, Subscribe: sub})
	for {
		var resp Response
		if err := ReadMessage(conn, &resp); err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case werr != nil:
				return fmt.Errorf("send subscribe to agent at %s: %w", socket, werr)
			}
			return fmt.Errorf("event stream from agent at %s broke: %w", socket, err)
		}
		if !resp.OK {
			return fmt.Errorf("agent refused subscribe: %s", resp.Error)
		}
		if resp.Events == nil {
			return errors.New("agent sent a stream frame without events")
		}
		if err := fn(resp.Events); err != nil {
			return err
		}
		if resp.Events.End {
			return nil
		}
	}
}
