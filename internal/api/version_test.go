package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A reader ignores the fields it does not know: a peer one version newer
// may add some.
func TestReadMessageIgnoresUnknownFields(t *testing.T) {
	var req Request
	body := `{"protocol":3,"op":"register","bogus":1,"register":{"container_id":"c","evil":true}}`
	if err := ReadMessage(bytes.NewReader(frame(body)), &req); err != nil {
		t.Fatal(err)
	}
	if req.Version() != 3 || req.Op != OpRegister || req.Register.ContainerID != "c" {
		t.Fatalf("decoded %+v", req)
	}
}

// v1Paths lists the JSON paths of protocolV1Schema, and those whose
// inside is free (maps, raw JSON).
func v1Paths() (known, free map[string]bool) {
	known, free = map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(protocolV1Schema), "\n") {
		path, kind, _ := strings.Cut(line, " ")
		known[path] = true
		if strings.HasPrefix(kind, "map[") || strings.Contains(kind, "RawMessage") {
			free[path] = true
		}
	}
	return known, free
}

// extraKeys returns the paths in v (decoded JSON) that known lacks.
func extraKeys(path string, v any, known, free map[string]bool) []string {
	if free[path] {
		return nil
	}
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := path + "." + k
			if !known[p] {
				out = append(out, p)
				continue
			}
			out = append(out, extraKeys(p, e, known, free)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, extraKeys(path, e, known, free)...)
		}
	}
	return out
}

// An answer in version 1 has only what the hooks before versions know:
// they refuse anything else, and the agent answers them during an
// upgrade.
func TestResponseAsVersion1(t *testing.T) {
	known, free := v1Paths()
	for name, msg := range map[string]any{"response": fullResponse().As(1), "request": fullRequest().As(1)} {
		b, err := json.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if extra := extraKeys(name, v, known, free); len(extra) > 0 {
			t.Errorf("%s in version 1 has fields version 1 does not know (clear them in As): %v", name, extra)
		}
	}
	if r := fullResponse().As(2); r.Protocol != 2 {
		t.Errorf("As(2) protocol %d", r.Protocol)
	}
}

// fakeAgent answers each connection's request with answer, recording the
// raw requests.
func fakeAgent(t *testing.T, answer func(raw []byte) string) (string, func() []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var raw json.RawMessage
			if err := ReadMessage(c, &raw); err == nil {
				mu.Lock()
				got = append(got, string(raw))
				mu.Unlock()
				_, _ = c.Write(frame(answer(raw)))
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return path, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
}

// v1Agent answers as the agents before versions did: a request with a
// field they do not know is refused at decoding.
func v1Agent(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var req struct {
		Op     string          `json:"op"`
		Status json.RawMessage `json:"status"`
	}
	if err := dec.Decode(&req); err != nil {
		return `{"ok":false,"error":"decode message: ` + strings.ReplaceAll(err.Error(), `"`, `\"`) + `"}`
	}
	return `{"ok":true,"status":{"node":"old"}}`
}

// A client of this version talks to an agent before versions: refused in
// version 1, it asks again in version 1.
func TestCallFallsBackToVersion1(t *testing.T) {
	path, got := fakeAgent(t, v1Agent)
	resp, err := Call(ctx5s(t), path, &Request{Op: OpStatus})
	if err != nil || resp.Status == nil || resp.Status.Node != "old" {
		t.Fatalf("Call: %+v, %v", resp, err)
	}
	reqs := got()
	if len(reqs) != 2 || !strings.Contains(reqs[0], `"protocol":2`) || strings.Contains(reqs[1], "protocol") {
		t.Fatalf("requests %q", reqs)
	}
}

// An agent whose versions this client does not speak: the error names
// both, and nothing is sent again.
func TestCallVersionTooFarApart(t *testing.T) {
	tests := []struct {
		name, answer string
		want         []string
	}{
		{"agent refuses", `{"protocol":4,"ok":false,"error":"the client speaks protocol version 2; this agent speaks 3 to 4"}`,
			[]string{"version 2", "3 to 4"}},
		{"agent answers in a newer version", `{"protocol":9,"ok":true}`,
			[]string{"speaks protocol version 9", "this client speaks 1 to 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, got := fakeAgent(t, func([]byte) string { return tt.answer })
			_, err := Call(ctx5s(t), path, &Request{Op: OpStatus})
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("error %v lacks %q", err, w)
				}
			}
			if n := len(got()); n != 1 {
				t.Fatalf("%d requests", n)
			}
		})
	}
}

// Subscribe agrees on the version as Call does.
func TestSubscribeFallsBackToVersion1(t *testing.T) {
	path, got := fakeAgent(t, func(raw []byte) string {
		if bytes.Contains(raw, []byte("protocol")) {
			return `{"ok":false,"error":"decode message: json: unknown field \"protocol\""}`
		}
		return `{"ok":true,"events":{"dropped":0,"end":true}}`
	})
	frames := 0
	err := Subscribe(ctx5s(t), path, &Subscription{}, func(*EventFrame) error { frames++; return nil })
	if err != nil || frames != 1 || len(got()) != 2 {
		t.Fatalf("Subscribe: %v, %d frames, requests %q", err, frames, got())
	}
}

// AnswerVersion names both versions, and tells a newer client this
// side's version in a field it reads.
func TestAnswerVersion(t *testing.T) {
	resp := AnswerVersion(&Request{Protocol: 7, Op: OpStatus})
	if resp.OK || resp.Protocol != ProtocolVersion || !strings.Contains(resp.Error, "the client speaks protocol version 7; this agent speaks 1 to 2") {
		t.Fatalf("answer %+v", resp)
	}
	var ve *VersionError
	if err := error(&VersionError{Peer: "p", Self: "s", Got: 3}); !errors.As(err, &ve) {
		t.Fatal("not a VersionError")
	}
	var buf bytes.Buffer
	if err := WriteMessage(&buf, AnswerVersion(&Request{Protocol: -1})); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(&buf); bytes.Contains(b, []byte("protocol\":")) {
		t.Fatalf("an older client's answer carries a protocol field: %s", b)
	}
}

// A registration sent to a version-1 agent carries the operator's profile
// as the profile annotation, as run-job did then, and drops the runtime
// annotation's name; the request itself is not changed.
func TestRequestAsVersion1CarriesTheProfile(t *testing.T) {
	req := &Request{Op: OpRegister, Register: &Registration{ContainerID: "job-1", Pid: 7,
		Annotations: map[string]string{"a": "b"}, RuntimeAnnotation: "io.container.manager", Profile: "ci-runner"}}
	v1 := req.As(1)
	if got := v1.Register.Annotations; got["ocigate.io/profile"] != "ci-runner" || got["a"] != "b" {
		t.Errorf("version-1 annotations %v", got)
	}
	if v1.Register.Profile != "" || v1.Register.RuntimeAnnotation != "" || v1.Protocol != 0 {
		t.Errorf("version-1 registration %+v", v1.Register)
	}
	if req.Register.Profile != "ci-runner" || len(req.Register.Annotations) != 1 || req.Register.RuntimeAnnotation == "" {
		t.Errorf("As changed the request: %+v", req.Register)
	}
	if v2 := req.As(2); v2.Register.Profile != "ci-runner" || v2.Protocol != 2 {
		t.Errorf("version 2 lost the profile: %+v", v2.Register)
	}
}
