package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// frame builds a length-prefixed frame around body.
func frame(body string) []byte {
	b := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(b, uint32(len(body)))
	copy(b[4:], body)
	return b
}

// header returns only a 4-byte length header.
func header(n uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return b[:]
}

func sampleRegister() *Request {
	return &Request{Op: OpRegister, Register: &Registration{
		ContainerID: "c1", Runtime: "runc", Bundle: "/run/b/c1", Pid: 4242,
		Annotations: map[string]string{"ocigate.io/profile": "default", "k": "v<&>"},
		Identity: Identity{CgroupID: 77, CgroupPath: "/kubepods/c1",
			Namespaces: NamespaceIDs{Mnt: 1, Pid: 2, Net: 3}},
	}}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, in := range []*Request{
		sampleRegister(),
		{Op: OpUnregister, Unregister: &Unregistration{ContainerID: "c1"}},
		{Op: OpStatus},
		{Op: OpSubscribe, Subscribe: &Subscription{Follow: true, Tail: -1, Container: "abc", Types: []string{"process_kprobe"}, Policies: []string{"p"}}},
	} {
		var buf bytes.Buffer
		if err := WriteMessage(&buf, in); err != nil {
			t.Fatalf("WriteMessage: %v", err)
		}
		if n := binary.BigEndian.Uint32(buf.Bytes()); int(n) != buf.Len()-4 {
			t.Fatalf("header says %d bytes, body has %d", n, buf.Len()-4)
		}
		var out Request
		if err := ReadMessage(&buf, &out); err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
		a, _ := json.Marshal(in)
		b, _ := json.Marshal(&out)
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip changed the message:\n in  %s\n out %s", a, b)
		}
		if buf.Len() != 0 {
			t.Fatalf("ReadMessage left %d bytes unread", buf.Len())
		}
	}
}

// Two messages back to back on one stream are read one at a time.
func TestReadMessageConsumesExactlyOneFrame(t *testing.T) {
	var buf bytes.Buffer
	_ = WriteMessage(&buf, &Request{Op: OpStatus})
	_ = WriteMessage(&buf, &Request{Op: OpUnregister, Unregister: &Unregistration{ContainerID: "x"}})
	var a, b Request
	if err := ReadMessage(&buf, &a); err != nil || a.Op != OpStatus {
		t.Fatalf("first: %+v, %v", a, err)
	}
	if err := ReadMessage(&buf, &b); err != nil || b.Op != OpUnregister || b.Unregister.ContainerID != "x" {
		t.Fatalf("second: %+v, %v", b, err)
	}
	if err := ReadMessage(&buf, &b); !errors.Is(err, io.EOF) {
		t.Fatalf("third: got %v, want io.EOF", err)
	}
}

// failReader fails the test when anything reads it.
type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("ReadMessage read the body of an oversize frame")
	return 0, io.EOF
}

func TestReadMessageOversizeHeaderNotReadFurther(t *testing.T) {
	for _, n := range []uint32{MaxMessageSize + 1, 1<<32 - 1} {
		r := io.MultiReader(bytes.NewReader(header(n)), failReader{t})
		var req Request
		err := ReadMessage(r, &req)
		if err == nil || !strings.Contains(err.Error(), "exceeds the 1048576 byte limit") {
			t.Fatalf("size %d: got %v, want the limit error", n, err)
		}
	}
}

func TestReadMessageAcceptsExactlyMaxSize(t *testing.T) {
	// {"op":"status"} padded with spaces inside the object.
	body := `{"op":"status"` + strings.Repeat(" ", MaxMessageSize-len(`{"op":"status"}`)) + `}`
	if len(body) != MaxMessageSize {
		t.Fatalf("bad test body size %d", len(body))
	}
	var req Request
	if err := ReadMessage(bytes.NewReader(frame(body)), &req); err != nil || req.Op != OpStatus {
		t.Fatalf("max-size frame: %+v, %v", req, err)
	}
}

func TestReadMessageErrors(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  string // substring of the error
		is    error  // optional errors.Is target
	}{
		{"empty stream", nil, "read message header", io.EOF},
		{"truncated header", []byte{0, 0}, "truncated", io.ErrUnexpectedEOF},
		{"zero length", header(0), "empty body", nil},
		{"truncated body", append(header(20), `{"op":"st`...), "read message body (20 bytes)", io.ErrUnexpectedEOF},
		{"header only", header(5), "read message body (5 bytes)", io.EOF},
		{"second object", frame(`{"op":"status"}{"op":"status"}`), "trailing data", nil},
		{"trailing garbage", frame(`{"op":"status"} x`), "trailing data", nil},
		{"non-JSON", frame(`hello`), "decode message", nil},
		{"truncated JSON", frame(`{"op":"status"`), "decode message", nil},
		{"wrong type", frame(`{"op":7}`), "decode message", nil},
		{"array", frame(`[1,2]`), "decode message", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			err := ReadMessage(bytes.NewReader(tt.input), &req)
			if err == nil {
				t.Fatalf("accepted %q as %+v", tt.input, req)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v is not %v", err, tt.is)
			}
		})
	}
}

// Trailing data that happens to be a closing bracket must be refused like
// any other trailing data: ReadMessage documents "trailing data ... are
// errors". json.Decoder.More reports false for '}' and ']', so these slip
// through today.
func TestReadMessageTrailingCloser(t *testing.T) {
	for _, body := range []string{`{"op":"status"}}`, `{"op":"status"}]`, `{"op":"status"} ]]]`} {
		var req Request
		err := ReadMessage(bytes.NewReader(frame(body)), &req)
		if err == nil || !strings.Contains(err.Error(), "trailing data") {
			t.Errorf("body %q: got err=%v, want a trailing data error", body, err)
		}
	}
}

func TestReadMessageTrailingWhitespaceOK(t *testing.T) {
	var req Request
	if err := ReadMessage(bytes.NewReader(frame("{\"op\":\"status\"}\n \t")), &req); err != nil || req.Op != OpStatus {
		t.Fatalf("got %+v, %v", req, err)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestWriteMessageErrors(t *testing.T) {
	var buf bytes.Buffer
	big := &Request{Op: OpRegister, Register: &Registration{ContainerID: "c",
		Annotations: map[string]string{"k": strings.Repeat("a", MaxMessageSize)}}}
	if err := WriteMessage(&buf, big); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversize: got %v", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("oversize message wrote %d bytes", buf.Len())
	}
	if err := WriteMessage(&buf, map[string]any{"c": make(chan int)}); err == nil || !strings.Contains(err.Error(), "encode message") {
		t.Fatalf("unencodable: got %v", err)
	}
	if err := WriteMessage(errWriter{}, &Request{Op: OpStatus}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("write error: got %v", err)
	}
}

func TestRequestValidate(t *testing.T) {
	okReg := func() *Registration {
		return &Registration{ContainerID: "c1", Pid: 1, Identity: Identity{CgroupID: 9, CgroupPath: "/a"}}
	}
	tests := []struct {
		name string
		req  Request
		want string // "" = valid
	}{
		{"status", Request{Op: OpStatus}, ""},
		{"register", Request{Op: OpRegister, Register: okReg()}, ""},
		{"register without body", Request{Op: OpRegister}, `without "register" body`},
		{"register with bad body", Request{Op: OpRegister, Register: &Registration{}}, "without container_id"},
		{"unregister", Request{Op: OpUnregister, Unregister: &Unregistration{ContainerID: "c1"}}, ""},
		{"unregister without body", Request{Op: OpUnregister}, "without container_id"},
		{"unregister empty id", Request{Op: OpUnregister, Unregister: &Unregistration{}}, "without container_id"},
		{"subscribe", Request{Op: OpSubscribe, Subscribe: &Subscription{Tail: -1, Types: []string{"process_exec", "process_exit"}}}, ""},
		{"subscribe without body", Request{Op: OpSubscribe}, `without "subscribe" body`},
		{"subscribe bad tail", Request{Op: OpSubscribe, Subscribe: &Subscription{Tail: -2}}, "tail -2"},
		{"subscribe bad type", Request{Op: OpSubscribe, Subscribe: &Subscription{Types: []string{"exec"}}}, `event type "exec"`},
		{"subscribe long container", Request{Op: OpSubscribe, Subscribe: &Subscription{Container: strings.Repeat("c", 1025)}}, "longer than 1024"},
		{"no op", Request{}, `has no "op"`},
		{"unknown op", Request{Op: "reboot"}, `unknown op "reboot"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, tt.req.Validate(), tt.want)
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got error %v, want one containing %q", err, want)
	}
}

func FuzzReadMessage(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteMessage(&buf, sampleRegister())
	f.Add(buf.Bytes())
	f.Add(frame(`{"op":"status"}`))
	f.Add(frame(`{"op":"unregister","unregister":{"container_id":"x"}}`))
	f.Add(frame(`{"op":"status"}}`))
	f.Add(frame(`{"op":"subscribe","subscribe":{"follow":true,"tail":-1,"types":["process_kprobe"]}}`))
	f.Add(frame(`{"op":"register","register":{"annotations":{"a":"\ud800"}}}`))
	f.Add(header(0))
	f.Add(header(MaxMessageSize + 1))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req Request
		if err := ReadMessage(bytes.NewReader(data), &req); err != nil {
			return
		}
		// Whatever was accepted encodes, and its encoding is stable.
		var out bytes.Buffer
		if err := WriteMessage(&out, &req); err != nil {
			t.Fatalf("accepted message does not re-encode: %v", err)
		}
		first := append([]byte(nil), out.Bytes()...)
		var again Request
		if err := ReadMessage(&out, &again); err != nil {
			t.Fatalf("re-encoded message is not accepted: %v\n%s", err, first)
		}
		var second bytes.Buffer
		if err := WriteMessage(&second, &again); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second.Bytes()) {
			t.Fatalf("encoding not stable:\n%s\n%s", first, second.Bytes())
		}
		_ = again.Validate() // must not panic on anything decodable
	})
}
