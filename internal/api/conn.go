package api

import (
	"context"
	"os"

	"github.com/ocigate/ocigate/internal/api/wire"
)

// ctxCancel ends a wire exchange when its context ends: a cancel shuts
// the socket down, which wakes a blocked read.
type ctxCancel struct{ ctx context.Context }

// Err is the context's error.
func (c ctxCancel) Err() error { return c.ctx.Err() }

// Watch shuts conn down when the context ends.
func (c ctxCancel) Watch(conn *wire.Conn) func() bool { return context.AfterFunc(c.ctx, conn.Shutdown) }

// dialPolled is wire.DialPolled within ctx.
func dialPolled(ctx context.Context, path string) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return wire.DialPolled(path)
}

// Listening reports whether an agent accepts connections on socket, as
// wire.Listening does, within ctx.
func Listening(ctx context.Context, socket string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, _ := ctx.Deadline()
	return wire.Listening(socket, dl)
}
