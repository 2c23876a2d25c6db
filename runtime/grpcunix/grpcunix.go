// Package grpcunix is a minimal gRPC client over a unix socket: unary and
// server-streaming calls with protobuf bytes the caller encodes, carried
// by the standard library's unencrypted HTTP/2. It is enough to ask a
// container runtime's API (containerd) a few questions without the gRPC
// module and the runtime's client library.
package grpcunix

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MaxMessage bounds one received message.
const MaxMessage = 16 << 20

// Client calls methods on one socket. It keeps one HTTP/2 connection.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client for the gRPC server listening on socket.
func New(socket string) *Client {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{
		Protocols: &protos,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		IdleConnTimeout: 90 * time.Second,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Close drops the client's idle connection.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// StatusError is a call the server answered with a gRPC status other
// than OK.
type StatusError struct {
	Method  string
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: gRPC status %d (%s): %s", e.Method, e.Code, codeName(e.Code), e.Message)
}

// gRPC status codes used by callers.
const (
	CodeNotFound    = 5
	CodeUnavailable = 14
)

// IsNotFound reports a NOT_FOUND status.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == CodeNotFound
}

func codeName(c int) string {
	names := []string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
		"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
	if c >= 0 && c < len(names) {
		return names[c]
	}
	return "code " + strconv.Itoa(c)
}

// Call makes a unary call: method is "/package.Service/Method", md are
// request metadata (headers), req the encoded request message. It returns
// the encoded response message.
func (c *Client) Call(ctx context.Context, method string, md map[string]string, req []byte) ([]byte, error) {
	s, err := c.Stream(ctx, method, md, req)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	msg, err := s.Recv()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: the server sent no answer", method)
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = fmt.Errorf("%s: more than one answer to a unary call", method)
		}
		return nil, err
	}
	return msg, nil
}

// Stream is the answer of a server-streaming call.
type Stream struct {
	method string
	resp   *http.Response
	hdr    [5]byte
}

// Stream starts a server-streaming call (or a unary one, read with Recv).
func (c *Client) Stream(ctx context.Context, method string, md map[string]string, req []byte) (*Stream, error) {
	body := make([]byte, 5+len(req))
	binary.BigEndian.PutUint32(body[1:5], uint32(len(req)))
	copy(body[5:], req)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://localhost"+method, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	hreq.Header.Set("Content-Type", "application/grpc+proto")
	hreq.Header.Set("Te", "trailers")
	for k, v := range md {
		hreq.Header.Set(k, v)
	}
	resp, err := c.hc.Do(hreq)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s on %s: %w", method, c.socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s on %s: HTTP status %s", method, c.socket, resp.Status)
	}
	s := &Stream{method: method, resp: resp}
	// A "trailers-only" answer carries the status in the headers.
	if err := s.status(resp.Header); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return s, nil
}

// Recv returns the next message; io.EOF when the call ended well.
func (s *Stream) Recv() ([]byte, error) {
	if _, err := io.ReadFull(s.resp.Body, s.hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			if serr := s.status(s.resp.Trailer); serr != nil {
				return nil, serr
			}
			if s.resp.Trailer.Get("Grpc-Status") == "" && s.resp.Header.Get("Grpc-Status") == "" {
				return nil, fmt.Errorf("%s: the answer ended without a gRPC status", s.method)
			}
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%s: reading the answer: %w", s.method, err)
	}
	if s.hdr[0] != 0 {
		return nil, fmt.Errorf("%s: compressed message (flag %d) not supported", s.method, s.hdr[0])
	}
	n := binary.BigEndian.Uint32(s.hdr[1:])
	if n > MaxMessage {
		return nil, fmt.Errorf("%s: message of %d bytes exceeds %d", s.method, n, MaxMessage)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(s.resp.Body, msg); err != nil {
		return nil, fmt.Errorf("%s: reading a %d-byte message: %w", s.method, n, err)
	}
	return msg, nil
}

// Close ends the call.
func (s *Stream) Close() error { return s.resp.Body.Close() }

func (s *Stream) status(h http.Header) error {
	v := h.Get("Grpc-Status")
	if v == "" || v == "0" {
		return nil
	}
	code, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%s: malformed grpc-status %q", s.method, v)
	}
	msg, uerr := url.PathUnescape(h.Get("Grpc-Message"))
	if uerr != nil {
		msg = h.Get("Grpc-Message")
	}
	return &StatusError{Method: s.method, Code: code, Message: msg}
}
