package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// agent listens on a socket in a test directory and answers each
// request with answer(raw request); requests returns the raw requests
// so far. A nil answer never answers (the connection stays open).
func agent(t *testing.T, path string, answer func(raw []byte) string) (requests func() []string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go serve(c, answer, func(raw []byte) { mu.Lock(); got = append(got, string(raw)); mu.Unlock() })
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
}

// serve reads one request from c, records it and answers it.
func serve(c net.Conn, answer func([]byte) string, record func([]byte)) {
	raw, err := ReadFrame(c)
	if err != nil {
		return
	}
	record(raw)
	if answer == nil {
		return
	}
	_ = WriteFrame(c, []byte(answer(raw)))
	c.Close()
}

// sock is a socket path in a test directory.
func sock(t *testing.T) string { return filepath.Join(t.TempDir(), "agent.sock") }

// in5s is a deadline 5 s away.
func in5s() time.Time { return time.Now().Add(5 * time.Second) }

func sampleRegistration() *Registration {
	return &Registration{ContainerID: "c1", Runtime: "runc", Pid: 42, RuntimeAnnotation: "io.container.manager",
		Annotations: map[string]string{"a": "b"}, Identity: Identity{CgroupID: 7, CgroupPath: "/c1"}}
}

// Register sends the registration in this version and returns the
// verdict; a refusal comes with its error and failure policy.
func TestRegister(t *testing.T) {
	path := sock(t)
	reqs := agent(t, path, func([]byte) string { return `{"protocol":2,"ok":true,"workload":{"container_id":"c1"}}` })
	v, err := Register(path, sampleRegistration(), time.Second, time.Second, in5s())
	if err != nil || !v.OK || v.Protocol != ProtocolVersion {
		t.Fatalf("got %+v, %v", v, err)
	}
	var got Request
	if r := reqs(); len(r) != 1 || json.Unmarshal([]byte(r[0]), &got) != nil ||
		got.Protocol != ProtocolVersion || got.Op != OpRegister || got.Register.RuntimeAnnotation != "io.container.manager" {
		t.Fatalf("requests %q", r)
	}
	refuses := sock(t)
	agent(t, refuses, func([]byte) string { return `{"protocol":2,"ok":false,"error":"no profile","failure_policy":"open"}` })
	v, err = Register(refuses, sampleRegistration(), time.Second, time.Second, in5s())
	if err == nil || err.Error() != "agent refused register: no profile" || v == nil || v.FailurePolicy != FailOpen {
		t.Fatalf("refusal: got %+v, %v", v, err)
	}
}

// An agent before versions refuses the unknown field "protocol":
// Register asks again in version 1, without the fields version 1 lacks.
func TestRegisterFallsBackToVersion1(t *testing.T) {
	path := sock(t)
	reqs := agent(t, path, func(raw []byte) string {
		if bytes.Contains(raw, []byte(`"protocol"`)) {
			return `{"ok":false,"error":"decode message: json: unknown field \"protocol\""}`
		}
		return `{"ok":true}`
	})
	v, err := Register(path, sampleRegistration(), time.Second, time.Second, in5s())
	r := reqs()
	if err != nil || !v.OK || len(r) != 2 || strings.Contains(r[1], "protocol") || strings.Contains(r[1], "runtime_annotation") {
		t.Fatalf("got %+v, %v; requests %q", v, err, r)
	}
}

// An agent whose version this build does not speak: the error names
// both, and nothing is sent again.
func TestRegisterVersionTooFarApart(t *testing.T) {
	path := sock(t)
	reqs := agent(t, path, func([]byte) string { return `{"protocol":9,"ok":true}` })
	_, err := Register(path, sampleRegistration(), time.Second, time.Second, in5s())
	var ve *VersionError
	if !errors.As(err, &ve) || err.Error() != "the agent at "+path+" speaks protocol version 9; this client speaks 1 to 2" {
		t.Fatalf("got %v", err)
	}
	if n := len(reqs()); n != 1 {
		t.Fatalf("%d requests", n)
	}
}
