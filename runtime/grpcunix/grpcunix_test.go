package grpcunix

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve runs an h2c HTTP/2 server on a unix socket with handler h.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "grpc.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &protos}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func frame(msg []byte) []byte {
	b := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	copy(b[5:], msg)
	return b
}

// reply answers with msgs and the given status in the trailers.
func reply(status string, msgs ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		for _, m := range msgs {
			w.Write(frame([]byte(m)))
		}
		w.Header().Set("Grpc-Status", status)
		if status != "0" {
			w.Header().Set("Grpc-Message", "no%20such%20thing")
		}
	}
}

func TestCall(t *testing.T) {
	var gotPath, gotNS, gotTE, gotCT string
	var gotBody []byte
	sock := serve(t, func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotNS, gotTE, gotCT = r.URL.Path, r.Header.Get("containerd-namespace"), r.Header.Get("Te"), r.Header.Get("Content-Type")
		gotBody, _ = io.ReadAll(r.Body)
		reply("0", "answer")(w, r)
	})
	c := New(sock)
	defer c.Close()
	got, err := c.Call(context.Background(), "/pkg.Svc/Get", map[string]string{"containerd-namespace": "k8s.io"}, []byte("question"))
	if err != nil || string(got) != "answer" {
		t.Fatalf("Call = %q, %v", got, err)
	}
	if gotPath != "/pkg.Svc/Get" || gotNS != "k8s.io" || gotTE != "trailers" || !strings.HasPrefix(gotCT, "application/grpc") ||
		string(gotBody) != string(frame([]byte("question"))) {
		t.Fatalf("request: path %q ns %q te %q ct %q body %q", gotPath, gotNS, gotTE, gotCT, gotBody)
	}
}

func TestCallErrors(t *testing.T) {
	tests := []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"status in trailers", reply("5"), "gRPC status 5 (NOT_FOUND): no such thing"},
		{"trailers only", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "12")
			w.Header().Set("Grpc-Message", "unknown service")
		}, "gRPC status 12 (UNIMPLEMENTED): unknown service"},
		{"no status", func(w http.ResponseWriter, r *http.Request) { w.Write(frame([]byte("x"))) }, "without a gRPC status"},
		{"no answer", reply("0"), "sent no answer"},
		{"two answers", reply("0", "a", "b"), "more than one answer"},
		{"compressed", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte{1, 0, 0, 0, 1, 'x'}) }, "compressed message"},
		{"too big", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte{0, 0xff, 0, 0, 0}) }, "exceeds"},
		{"truncated", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte{0, 0, 0, 0, 9, 'x'}) }, "reading a 9-byte message"},
		{"http error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusNotFound) }, "HTTP status 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(serve(t, tt.h))
			defer c.Close()
			_, err := c.Call(context.Background(), "/pkg.Svc/Get", nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "/pkg.Svc/Get") {
				t.Fatalf("err = %v, want %q naming the method", err, tt.want)
			}
		})
	}
	c := New(serve(t, reply("5")))
	if _, err := c.Call(context.Background(), "/m", nil, nil); !IsNotFound(err) {
		t.Errorf("IsNotFound(%v) = false", err)
	}
	if IsNotFound(errors.New("x")) {
		t.Error("IsNotFound of a plain error")
	}
}

func TestNoServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := New(sock).Call(context.Background(), "/m", nil, nil)
	if err == nil || !strings.Contains(err.Error(), sock) {
		t.Fatalf("err = %v, want one naming the socket", err)
	}
}

func TestStream(t *testing.T) {
	release := make(chan struct{})
	sock := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		for _, m := range []string{"one", "two"} {
			w.Write(frame([]byte(m)))
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Write(frame([]byte("three")))
		w.Header().Set("Grpc-Status", "0")
	})
	c := New(sock)
	s, err := c.Stream(context.Background(), "/pkg.Svc/Subscribe", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The first messages arrive while the call is still open.
	for _, want := range []string{"one", "two"} {
		got, err := s.Recv()
		if err != nil || string(got) != want {
			t.Fatalf("Recv = %q, %v; want %q", got, err, want)
		}
	}
	close(release)
	if got, err := s.Recv(); err != nil || string(got) != "three" {
		t.Fatalf("Recv = %q, %v", got, err)
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v", err)
	}

	// A stream ends when its context does.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s2, err := New(serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})).Stream(ctx, "/m", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Recv(); err == nil {
		t.Fatal("Recv returned without error after the context ended")
	}
}
