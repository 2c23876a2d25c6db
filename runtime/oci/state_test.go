package oci

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// runcState is the shape of the state runc 1.1 writes to hooks.
const runcState = `{"ociVersion":"1.0.2-dev","id":"c1","status":"creating","pid":1234,"bundle":"/tmp/b","annotations":{"ocigate.io/profile":"web","io.kubernetes.cri.sandbox-id":"abc"}}`

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadState(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    *State
		wantErr string // substring; "" means success
	}{
		{
			name: "runc 1.1 state",
			in:   runcState,
			want: &State{
				Version: "1.0.2-dev", ID: "c1", Status: "creating", Pid: 1234, Bundle: "/tmp/b",
				Annotations: map[string]string{"ocigate.io/profile": "web", "io.kubernetes.cri.sandbox-id": "abc"},
			},
		},
		{
			name: "poststop pid 0, whitespace around, unknown field",
			in:   "\n\t {\"ociVersion\":\"1.2.0\",\"id\":\"c2\",\"status\":\"stopped\",\"bundle\":\"/run/b\",\"extra\":[1]} \r\n",
			want: &State{Version: "1.2.0", ID: "c2", Status: "stopped", Bundle: "/run/b"},
		},
		{name: "oversize", in: strings.Repeat(" ", MaxStateSize+1), wantErr: "state on stdin exceeds 1048576 bytes"},
		{name: "oversize valid object", in: runcState + strings.Repeat(" ", MaxStateSize), wantErr: "exceeds 1048576 bytes"},
		{name: "empty", in: "", wantErr: "state on stdin is empty"},
		{name: "whitespace only", in: " \n\t", wantErr: "state on stdin is empty"},
		{name: "truncated", in: runcState[:40], wantErr: "decoding state on stdin: unexpected end of JSON input"},
		{name: "invalid json", in: `{"ociVersion":"1.0.2",}`, wantErr: "decoding state on stdin: invalid character"},
		{name: "trailing garbage", in: runcState + "garbage", wantErr: "trailing data after the JSON object"},
		{name: "second object", in: runcState + "\n" + runcState, wantErr: "trailing data"},
		{name: "array", in: `[` + runcState + `]`, wantErr: "not a JSON object"},
		{name: "null", in: `null`, wantErr: "not a JSON object"},
		{name: "pid string", in: `{"ociVersion":"1.0.2","id":"c1","pid":"x","bundle":"/b"}`, wantErr: "pid"},
		{name: "pid float", in: `{"ociVersion":"1.0.2","id":"c1","pid":1.5,"bundle":"/b"}`, wantErr: "pid"},
		{name: "id number", in: `{"ociVersion":"1.0.2","id":7,"bundle":"/b"}`, wantErr: "id"},
		{name: "annotations wrong type", in: `{"ociVersion":"1.0.2","id":"c1","bundle":"/b","annotations":{"a":1}}`, wantErr: "annotations"},
		{name: "negative pid", in: `{"ociVersion":"1.0.2","id":"c1","pid":-1,"bundle":"/b"}`, wantErr: `state field "pid" is negative: -1`},
		{name: "missing ociVersion", in: `{"id":"c1","pid":1,"bundle":"/b"}`, wantErr: `state field "ociVersion" is missing or empty`},
		{name: "empty ociVersion", in: `{"ociVersion":"","id":"c1","pid":1,"bundle":"/b"}`, wantErr: `"ociVersion" is missing or empty`},
		{name: "missing id", in: `{"ociVersion":"1.0.2","pid":1,"bundle":"/b"}`, wantErr: `state field "id" is missing or empty`},
		{name: "empty id", in: `{"ociVersion":"1.0.2","id":"","pid":1,"bundle":"/b"}`, wantErr: `"id" is missing or empty`},
		{name: "id with slash", in: `{"ociVersion":"1.0.2","id":"../etc","pid":1,"bundle":"/b"}`, wantErr: `state field "id" contains '/'`},
		{name: "id with NUL", in: `{"ociVersion":"1.0.2","id":"a\u0000b","pid":1,"bundle":"/b"}`, wantErr: `state field "id" contains a NUL byte`},
		{name: "id dotdot", in: `{"ociVersion":"1.0.2","id":"..","pid":1,"bundle":"/b"}`, wantErr: `state field "id" must not be ".."`},
		{name: "id too long", in: `{"ociVersion":"1.0.2","id":"` + strings.Repeat("a", 1025) + `","bundle":"/b"}`, wantErr: `state field "id" is 1025 bytes long, limit is 1024`},
		{
			name: "id at limit",
			in:   `{"ociVersion":"1.0.2","id":"` + strings.Repeat("a", 1024) + `","bundle":"/b"}`,
			want: &State{Version: "1.0.2", ID: strings.Repeat("a", 1024), Bundle: "/b"},
		},
		{name: "missing bundle", in: `{"ociVersion":"1.0.2","id":"c1","pid":1}`, wantErr: `state field "bundle" is missing or empty`},
		{name: "relative bundle", in: `{"ociVersion":"1.0.2","id":"c1","pid":1,"bundle":"tmp/b"}`, wantErr: `state field "bundle" is not an absolute path: "tmp/b"`},
		{name: "dot bundle", in: `{"ociVersion":"1.0.2","id":"c1","pid":1,"bundle":"."}`, wantErr: `"bundle" is not an absolute path`},
		{name: "bundle with NUL", in: `{"ociVersion":"1.0.2","id":"c1","pid":1,"bundle":"/b\u0000c"}`, wantErr: `state field "bundle" contains a NUL byte`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := ReadState(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ReadState succeeded with %+v, want error containing %q", st, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadState error = %q, want it to contain %q", err, tt.wantErr)
				}
				if st != nil {
					t.Fatalf("ReadState returned state %+v along with error", st)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadState: %v", err)
			}
			if !stateEqual(st, tt.want) {
				t.Fatalf("ReadState = %+v, want %+v", st, tt.want)
			}
		})
	}
}

func stateEqual(a, b *State) bool {
	if a.Version != b.Version || a.ID != b.ID || a.Status != b.Status || a.Pid != b.Pid || a.Bundle != b.Bundle {
		return false
	}
	if len(a.Annotations) != len(b.Annotations) {
		return false
	}
	for k, v := range b.Annotations {
		if got, ok := a.Annotations[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func TestReadStateErrors(t *testing.T) {
	boom := errors.New("boom")
	if _, err := ReadState(errReader{boom}); !errors.Is(err, boom) {
		t.Errorf("ReadState(failing reader) error = %v, want wrapping %v", err, boom)
	}
	if _, err := ReadState(nil); err == nil {
		t.Error("ReadState(nil) succeeded")
	}
	// The state is read in one go, even when the reader hands it out
	// in small pieces (as a pipe may).
	st, err := ReadState(io.MultiReader(strings.NewReader(runcState[:10]), strings.NewReader(runcState[10:])))
	if err != nil || st.ID != "c1" {
		t.Errorf("ReadState(split reader) = %+v, %v", st, err)
	}
}

func TestRequirePid(t *testing.T) {
	tests := []struct {
		name    string
		st      *State
		wantErr string
	}{
		{name: "positive", st: &State{ID: "c1", Pid: 1234}},
		{name: "one", st: &State{ID: "c1", Pid: 1}},
		{name: "zero", st: &State{ID: "c1"}, wantErr: `state field "pid" must be > 0, got 0 (container "c1")`},
		{name: "negative", st: &State{ID: "c1", Pid: -5}, wantErr: `got -5`},
		{name: "nil", st: nil, wantErr: "state is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RequirePid(tt.st)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("RequirePid: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("RequirePid error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzReadState(f *testing.F) {
	for _, s := range []string{
		runcState,
		`{"ociVersion":"1.2.0","id":"c2","status":"stopped","bundle":"/run/b"}`,
		`{"ociVersion":"1.0.2","id":"c1","pid":"x","bundle":"/b"}`,
		`{"ociVersion":"1.0.2","id":"a/b","pid":1,"bundle":"/b"}`,
		`{"ociVersion":"1.0.2","id":"c1","pid":-1,"bundle":"b"}`,
		runcState + "x",
		runcState[:30],
		"",
		"null",
		"[]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ReadState(strings.NewReader(string(data)))
		if err != nil {
			if st != nil {
				t.Fatalf("ReadState returned a state along with error %v", err)
			}
			return
		}
		if st == nil {
			t.Fatal("ReadState returned nil state and nil error")
		}
		if st.ID == "" || st.Version == "" {
			t.Fatalf("accepted state with empty id or ociVersion: %+v", st)
		}
		if len(st.ID) > maxIDLen || strings.ContainsAny(st.ID, "/\x00") || st.ID == "." || st.ID == ".." {
			t.Fatalf("accepted state with bad id %q", st.ID)
		}
		if !filepath.IsAbs(st.Bundle) {
			t.Fatalf("accepted state with non-absolute bundle %q", st.Bundle)
		}
		if st.Pid < 0 {
			t.Fatalf("accepted state with negative pid %d", st.Pid)
		}
	})
}
