package apiserver

import (
	"context"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/api"
)

// ctxHandler answers with fn, which sees the request's context.
type ctxHandler func(ctx context.Context, req *api.Request) (*api.Response, error)

func (h ctxHandler) Handle(ctx context.Context, req *api.Request) (*api.Response, error) {
	return h(ctx, req)
}

// TestAfterAnswerRunsAfterTheAnswer: work left with AfterAnswer runs
// once the client has its answer, in order; the client never waits for
// it (a step that blocks until the client has answered would otherwise
// hang the call).
func TestAfterAnswerRunsAfterTheAnswer(t *testing.T) {
	answered := make(chan struct{})
	ran := make(chan int, 2)
	h := ctxHandler(func(ctx context.Context, _ *api.Request) (*api.Response, error) {
		AfterAnswer(ctx, func() {
			<-answered
			ran <- 1
		})
		AfterAnswer(ctx, func() { ran <- 2 })
		return &api.Response{}, nil
	})
	path, _, _ := serve(t, h)
	if _, err := api.Call(callCtx(t), path, &api.Request{Op: api.OpStatus}); err != nil {
		t.Fatalf("Call: %v", err)
	}
	select {
	case n := <-ran:
		t.Fatalf("after-answer step %d ran before the client was answered", n)
	default:
	}
	close(answered)
	for want := 1; want <= 2; want++ {
		select {
		case got := <-ran:
			if got != want {
				t.Fatalf("after-answer step %d ran, want %d first", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("after-answer step %d never ran", want)
		}
	}
}

// TestAfterAnswerOutsideARequest: without a request being served, the
// work runs at once.
func TestAfterAnswerOutsideARequest(t *testing.T) {
	ran := false
	AfterAnswer(context.Background(), func() { ran = true })
	if !ran {
		t.Fatal("AfterAnswer outside a request did not run f at once")
	}
}

// TestStepsOfAfterTheAnswer: a function AfterAnswer runs sees the
// server's steps of its request, the answer's included; outside a
// request there are none.
func TestStepsOfAfterTheAnswer(t *testing.T) {
	got := make(chan Steps, 1)
	h := ctxHandler(func(ctx context.Context, _ *api.Request) (*api.Response, error) {
		AfterAnswer(ctx, func() {
			st, ok := StepsOf(ctx)
			if !ok {
				t.Error("StepsOf: no steps in a request served here")
			}
			got <- st
		})
		return &api.Response{}, nil
	})
	path, _, _ := serve(t, h)
	if _, err := api.Call(callCtx(t), path, &api.Request{Op: api.OpStatus}); err != nil {
		t.Fatalf("Call: %v", err)
	}
	select {
	case st := <-got:
		if st.Start < 0 || st.Read <= 0 || st.Answer <= 0 {
			t.Errorf("steps %+v: want a start, and a read and an answer that took time", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the after-answer step never ran")
	}
	if _, ok := StepsOf(context.Background()); ok {
		t.Error("StepsOf outside a request says it has steps")
	}
}
