package apiserver

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/internal/api"
)

// fakeHandler records requests and answers with fn (default: empty ok).
type fakeHandler struct {
	mu   sync.Mutex
	reqs []*api.Request
	seen chan *api.Request // every request, buffered
	fn   func(*api.Request) (*api.Response, error)
}

func newFakeHandler(fn func(*api.Request) (*api.Response, error)) *fakeHandler {
	return &fakeHandler{seen: make(chan *api.Request, 64), fn: fn}
}

func (h *fakeHandler) Handle(_ context.Context, req *api.Request) (*api.Response, error) {
	h.mu.Lock()
	h.reqs = append(h.reqs, req)
	h.mu.Unlock()
	h.seen <- req
	if h.fn != nil {
		return h.fn(req)
	}
	return &api.Response{}, nil
}

func (h *fakeHandler) requests() []*api.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*api.Request(nil), h.reqs...)
}

// serve starts a server on a fresh socket; stop closes it and waits until
// Serve has returned (and with it every connection goroutine).
func serve(t *testing.T, h Handler) (path string, srv *Server, stop func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "run", "agentd.sock")
	srv, err := Listen(path, h, zap.NewNop())
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Serve did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return path, srv, stop
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestListenSocketMode(t *testing.T) {
	path, _, _ := serve(t, newFakeHandler(nil))
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory mode %v, want 0700", di.Mode().Perm())
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentd.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	srv, err := Listen(path, newFakeHandler(nil), zap.NewNop())
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer srv.Close()
	go srv.Serve(context.Background())
	if _, err := api.Call(callCtx(t), path, &api.Request{Op: api.OpStatus}); err != nil {
		t.Fatalf("Call on the replaced socket: %v", err)
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentd.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, newFakeHandler(nil), zap.NewNop()); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("got %v, want a refusal", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Fatalf("file at the path was touched: %q, %v", b, err)
	}
}

func TestListenRefusesLiveAgent(t *testing.T) {
	h := newFakeHandler(nil)
	path, _, _ := serve(t, h)
	if _, err := Listen(path, newFakeHandler(nil), zap.NewNop()); err == nil || !strings.Contains(err.Error(), "another agent is listening") {
		t.Fatalf("got %v, want a refusal", err)
	}
	// The live agent keeps its socket.
	if _, err := api.Call(callCtx(t), path, &api.Request{Op: api.OpStatus}); err != nil {
		t.Fatalf("first agent unreachable after the refused Listen: %v", err)
	}
}

func TestCallRoundTrip(t *testing.T) {
	want := &api.Workload{ContainerID: "c1", Profile: "default", Identity: api.Identity{CgroupID: 5, CgroupPath: "/x"}}
	h := newFakeHandler(func(r *api.Request) (*api.Response, error) {
		switch r.Op {
		case api.OpStatus:
			return &api.Response{Status: &api.Status{Node: "node-1", Profiles: []string{"default"}, Counters: map[string]uint64{"registrations": 3}}}, nil
		case api.OpRegister:
			return &api.Response{Workload: want}, nil
		}
		return &api.Response{}, nil
	})
	path, _, _ := serve(t, h)

	resp, err := api.Call(callCtx(t), path, &api.Request{Op: api.OpStatus})
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if !resp.OK || resp.Status == nil || resp.Status.Node != "node-1" || resp.Status.Counters["registrations"] != 3 {
		t.Fatalf("status response %+v", resp)
	}

	req := sampleRegister()
	resp, err = api.Call(callCtx(t), path, req)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if !resp.OK || resp.Workload == nil || resp.Workload.ContainerID != "c1" || resp.Workload.CgroupID != 5 {
		t.Fatalf("register response %+v", resp)
	}
	got := h.requests()
	if len(got) != 2 || got[1].Op != api.OpRegister || got[1].Register.Pid != 4242 ||
		got[1].Register.Identity.CgroupPath != "/kubepods/c1" || got[1].Register.Annotations["k"] != "v<&>" {
		t.Fatalf("handler saw %+v", got)
	}
}

func TestCallHandlerError(t *testing.T) {
	h := newFakeHandler(func(*api.Request) (*api.Response, error) {
		return &api.Response{OK: true}, errors.New("cgroup /x has id 4, registration says 5")
	})
	path, _, _ := serve(t, h)
	resp, err := api.Call(callCtx(t), path, sampleRegister())
	if err == nil || !strings.Contains(err.Error(), "cgroup /x has id 4, registration says 5") {
		t.Fatalf("got %v, want the handler's error", err)
	}
	if resp == nil || resp.OK || resp.Error != "cgroup /x has id 4, registration says 5" {
		t.Fatalf("response %+v, want ok=false with the message", resp)
	}
}

func TestCallInvalidRequestNeverReachesHandler(t *testing.T) {
	h := newFakeHandler(nil)
	path, _, stop := serve(t, h)
	_, err := api.Call(callCtx(t), path, &api.Request{Op: api.OpRegister, Register: &api.Registration{ContainerID: "c"}})
	if err == nil || !strings.Contains(err.Error(), "without cgroup_id") {
		t.Fatalf("got %v", err)
	}
	_, err = api.Call(callCtx(t), path, &api.Request{Op: "reboot"})
	if err == nil || !strings.Contains(err.Error(), `unknown op "reboot"`) {
		t.Fatalf("got %v", err)
	}
	stop()
	if n := len(h.requests()); n != 0 {
		t.Fatalf("handler called %d times for invalid requests", n)
	}
}

func TestServerAnswersMalformedFrame(t *testing.T) {
	h := newFakeHandler(nil)
	path, _, _ := serve(t, h)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(frame(`{"op":"status","x":1`)); err != nil {
		t.Fatal(err)
	}
	var resp api.Response
	if err := api.ReadMessage(c, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.OK || !strings.Contains(resp.Error, "decode message") {
		t.Fatalf("response %+v", resp)
	}
}

// A register whose answer cannot be delivered is rolled back.
func TestLostRegisterAnswerRollsBack(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := newFakeHandler(func(r *api.Request) (*api.Response, error) {
		if r.Op == api.OpRegister {
			close(entered)
			<-release
		}
		return &api.Response{}, nil
	})
	path, _, _ := serve(t, h)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := api.WriteMessage(c, sampleRegister()); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, entered, "handler never saw the register")
	c.Close()
	close(release)

	deadline := time.After(5 * time.Second)
	for {
		select {
		case r := <-h.seen:
			if r.Op == api.OpUnregister {
				if r.Unregister == nil || r.Unregister.ContainerID != "c1" {
					t.Fatalf("rollback unregistered %+v, want c1", r.Unregister)
				}
				return
			}
		case <-deadline:
			t.Fatalf("no rollback unregister; handler saw %d requests", len(h.requests()))
		}
	}
}

// Delivered answers and refused registrations are never rolled back.
func TestNoRollbackWhenAnswered(t *testing.T) {
	h := newFakeHandler(func(r *api.Request) (*api.Response, error) {
		if r.Register != nil && r.Register.ContainerID == "bad" {
			return nil, errors.New("refused")
		}
		return &api.Response{}, nil
	})
	path, _, stop := serve(t, h)
	if _, err := api.Call(callCtx(t), path, sampleRegister()); err != nil {
		t.Fatal(err)
	}
	bad := sampleRegister()
	bad.Register.ContainerID = "bad"
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	_ = api.WriteMessage(c, bad)
	c.Close() // its (error) answer is lost
	for n := 0; n < 2; n++ {
		select {
		case <-h.seen:
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not see both registers")
		}
	}
	stop() // waits for every connection goroutine, rollbacks included
	for _, r := range h.requests() {
		if r.Op == api.OpUnregister {
			t.Fatalf("unexpected rollback of %+v", r.Unregister)
		}
	}
}

func sampleRegister() *api.Request {
	return &api.Request{Op: api.OpRegister, Register: &api.Registration{
		ContainerID: "c1", Runtime: "runc", Pid: 4242,
		Annotations: map[string]string{"k": "v<&>"},
		Identity:    api.Identity{CgroupID: 77, CgroupPath: "/kubepods/c1"},
	}}
}

func frame(body string) []byte {
	b := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(b, uint32(len(body)))
	copy(b[4:], body)
	return b
}

func waitClosed(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal(msg)
	}
}
