package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/apiserver"
)

// statusAgent answers status requests with st (an empty status when nil).
type statusAgent struct{ st *api.Status }

func (s statusAgent) Handle(_ context.Context, req *api.Request) (*api.Response, error) {
	if req.Op != api.OpStatus {
		return nil, fmt.Errorf("op %s: want status", req.Op)
	}
	if s.st == nil {
		return &api.Response{Status: &api.Status{}}, nil
	}
	return &api.Response{Status: s.st}, nil
}

// serveAgent serves the API with h on path until the end of the test:
// listening at once (delay 0) or, like an agent that is starting, from
// delay on.
func serveAgent(t *testing.T, path string, delay time.Duration, h apiserver.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	serve := func(srv *apiserver.Server, err error) {
		defer close(done)
		if err != nil {
			t.Error(err)
			return
		}
		_ = srv.Serve(ctx)
	}
	if delay > 0 {
		time.AfterFunc(delay, func() { serve(apiserver.Listen(path, h, zap.NewNop())) })
		return
	}
	srv, err := apiserver.Listen(path, h, zap.NewNop())
	if err != nil {
		close(done)
		t.Fatal(err)
	}
	go serve(srv, nil)
}
