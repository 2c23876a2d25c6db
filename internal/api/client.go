package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Call sends one request to the agent at socket and returns its response.
// The context's deadline bounds the dial, the write and the read. An
// answer with ok=false is returned as an error.
func Call(ctx context.Context, socket string, req *Request) (*Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("agent at %s is not reachable: %w", socket, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	werr := WriteMessage(conn, req)
	var resp Response
	if err := ReadMessage(conn, &resp); err != nil {
		if werr != nil { // the agent hung up early and said nothing
			return nil, fmt.Errorf("send %s to agent at %s: %w", req.Op, socket, werr)
		}
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return nil, fmt.Errorf("agent at %s did not answer %s: %w", socket, req.Op, err)
	}
	if !resp.OK {
		return &resp, fmt.Errorf("agent refused %s: %s", req.Op, resp.Error)
	}
	return &resp, nil
}
