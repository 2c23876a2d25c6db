// Package apiserver serves the agent's API (package api) on a unix socket
// to root peers only.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/internal/api"
)

// Handler carries out requests.
type Handler interface {
	Handle(ctx context.Context, req *api.Request) (*api.Response, error)
}

// Streamer is a Handler that also serves streaming operations
// (api.OpSubscribe): it calls send for each message and returns when the
// stream is over or ctx ends, which happens when the peer hangs up. An
// error it returns is sent to the peer as the last message.
type Streamer interface {
	Stream(ctx context.Context, req *api.Request, send func(*api.Response) error) error
}

// ConnDeadline bounds one connection: a peer that stalls is dropped.
const ConnDeadline = 5 * time.Second

// RequestDeadline bounds the wait for a connection's request: hooks send
// theirs at once.
const RequestDeadline = time.Second

// MaxWaiting bounds the connections that have not sent their request yet.
// Every connection is accepted at once; when one more would exceed the
// bound, the one waiting longest is closed. A real hook sends its request
// right after connecting, so a flood of idle or slow connections evicts
// its own members, never fills the agent's descriptors, and never delays
// a registration.
const MaxWaiting = 256

// StreamWriteDeadline bounds each message of a stream: a subscriber that
// reads nothing for this long is dropped.
const StreamWriteDeadline = 10 * time.Second

// Server accepts root peers on a unix socket and answers one request per
// connection.
type Server struct {
	ln      *net.UnixListener
	handler Handler
	log     *zap.Logger
	wg      sync.WaitGroup
	waiting waitingConns
	// AllowUID is the peer uid accepted besides 0 (tests); -1: root only.
	AllowUID int
}

// Listen creates the socket at path with mode 0600, replacing a stale one.
func Listen(path string, h Handler, log *zap.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return &Server{ln: ln, handler: h, log: log, AllowUID: -1}, nil
}

// removeStaleSocket removes a socket file nobody answers on, and refuses
// to start beside a live agent.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("another agent is listening on %s", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// Serve accepts until ctx ends or the listener is closed.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				s.wg.Wait()
				return nil
			}
			s.log.Warn("accept failed", zap.Error(err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		accepted := time.Now()
		s.waiting.add(conn, MaxWaiting)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, conn, accepted)
		}()
	}
}

// Close stops accepting.
func (s *Server) Close() error { return s.ln.Close() }

func (s *Server) serveConn(ctx context.Context, conn *net.UnixConn, accepted time.Time) {
	started := time.Now()
	defer conn.Close()
	defer s.waiting.remove(conn)
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("request handler panicked; connection dropped", zap.Any("panic", r))
		}
	}()
	_ = conn.SetDeadline(time.Now().Add(ConnDeadline))
	uid, err := peerUID(conn)
	if err != nil {
		s.log.Warn("peer credentials unavailable", zap.Error(err))
		return
	}
	if uid != 0 && uid != s.AllowUID {
		s.log.Warn("refused non-root peer", zap.Int("uid", uid))
		_ = api.WriteMessage(conn, &api.Response{Error: fmt.Sprintf("peer uid %d refused: root only", uid)})
		return
	}
	var req api.Request
	_ = conn.SetReadDeadline(time.Now().Add(RequestDeadline))
	err = api.ReadMessage(conn, &req)
	s.waiting.remove(conn)
	_ = conn.SetDeadline(time.Now().Add(ConnDeadline))
	if err != nil {
		s.log.Warn("bad request", zap.Error(err))
		_ = api.WriteMessage(conn, &api.Response{Error: err.Error()})
		return
	}
	if !api.Speaks(req.Version()) {
		answer := api.AnswerVersion(&req)
		s.log.Warn("request in a protocol version not spoken here", zap.String("op", req.Op), zap.String("error", answer.Error))
		_ = api.WriteMessage(conn, answer)
		return
	}
	if req.Op == api.OpSubscribe {
		s.stream(ctx, conn, &req)
		return
	}
	read := time.Now()
	hctx, after := withAfterAnswer(ctx)
	resp, err := s.handle(hctx, &req)
	handled := time.Now()
	if err != nil {
		resp = &api.Response{Error: err.Error()}
		var pe *api.PolicyError
		if errors.As(err, &pe) {
			resp.FailurePolicy = pe.FailurePolicy
		}
	}
	// The answer goes in the request's version: a hook one version
	// older is answered as that version's agent would.
	werr := api.WriteMessage(conn, resp.As(req.Version()))
	after(Steps{Start: started.Sub(accepted), Read: read.Sub(started), Answer: time.Since(handled)})
	if err := werr; err != nil {
		s.log.Warn("answer lost", zap.String("op", req.Op), zap.Error(err))
		if req.Op == api.OpRegister && resp.OK {
			s.rollback(ctx, req.Register.ContainerID)
		}
	}
}

// rollback undoes a registration whose hook never heard the answer: the
// runtime refuses that container, so nothing may stay registered for it.
func (s *Server) rollback(ctx context.Context, containerID string) {
	req := &api.Request{Op: api.OpUnregister, Unregister: &api.Unregistration{ContainerID: containerID}}
	if _, err := s.handler.Handle(ctx, req); err != nil {
		s.log.Error("rollback of unanswered registration failed", zap.String("container", containerID), zap.Error(err))
		return
	}
	s.log.Warn("rolled back registration the hook did not receive", zap.String("container", containerID))
}

func (s *Server) handle(ctx context.Context, req *api.Request) (*api.Response, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	resp, err := s.handler.Handle(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, fmt.Errorf("%s: the agent produced no answer", req.Op)
	}
	resp.OK = true
	return resp, nil
}

// stream serves a streaming request until the handler ends it, the peer
// hangs up (or sends anything more) or ctx ends.
func (s *Server) stream(ctx context.Context, conn *net.UnixConn, req *api.Request) {
	v := req.Version()
	st, ok := s.handler.(Streamer)
	if !ok {
		_ = api.WriteMessage(conn, (&api.Response{Error: fmt.Sprintf("%s is not served here", req.Op)}).As(v))
		return
	}
	if err := req.Validate(); err != nil {
		_ = api.WriteMessage(conn, (&api.Response{Error: err.Error()}).As(v))
		return
	}
	_ = conn.SetDeadline(time.Time{})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		var b [1]byte
		_, _ = conn.Read(b[:]) // returns when the peer hangs up, or at Close
		cancel()
	}()
	send := func(r *api.Response) error {
		r.OK = true
		_ = conn.SetWriteDeadline(time.Now().Add(StreamWriteDeadline))
		return api.WriteMessage(conn, r.As(v))
	}
	if err := st.Stream(ctx, req, send); err != nil {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_ = api.WriteMessage(conn, (&api.Response{Error: err.Error()}).As(v))
	}
}

func peerUID(conn *net.UnixConn) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if credErr != nil {
		return -1, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	return int(cred.Uid), nil
}
