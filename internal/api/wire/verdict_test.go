package wire

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/plainjson/difftest"
)

// Whatever ParseVerdict accepts, encoding/json decodes to the same
// verdict (package api's ReadMessage's rules: unknown members ignored,
// nothing after the object).
func FuzzParseVerdictMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{"protocol":2,"ok":true,"workload":{"container_id":"c1","annotations":{"a":"b"}}}`,
		`{"ok":false,"error":"agent refused","failure_policy":"open"}`, `{"OK":true}`, `{"ok":null}`, `{"ok":true,"ok":false}`,
		`{"protocol":2.0,"ok":true}`, `{"error":"a \"b\""}`, `{"ok":1}`, `{"ok":true} x`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseVerdict(b)
		if err != nil && !strings.HasPrefix(err.Error(), "decode message: ") {
			t.Fatalf("%q: error %q", b, err)
		}
		var want Verdict
		wantErr := json.Unmarshal(b, &want)
		difftest.Agree(t, "verdict", b, v, err, &want, wantErr)
	})
}

// A refusal is read with its error and failure policy; what is not a
// verdict is an error that says so.
func TestParseVerdict(t *testing.T) {
	v, err := ParseVerdict([]byte(`{"protocol":2,"ok":false,"error":"no profile matches","failure_policy":"open","workload":null}`))
	if err != nil || *v != (Verdict{Protocol: 2, Error: "no profile matches", FailurePolicy: FailOpen}) {
		t.Fatalf("refusal: %+v, %v", v, err)
	}
	for _, bad := range []string{``, `{`, `{"ok":"yes"}`, `{"ok":true}{}`, `"ok"`} {
		if v, err := ParseVerdict([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "decode message: ") {
			t.Errorf("%q: %+v, %v; want a decode error", bad, v, err)
		}
	}
}

// A refusal asks for an older version when it names one spoken here
// (version 2 on) or is a version-1 agent's refusal of "protocol".
func TestOlderVersion(t *testing.T) {
	v1 := `decode message: json: unknown field "protocol"`
	for _, tt := range []struct {
		name string
		v    *Verdict
		sent int
		want int
		ok   bool
	}{
		{"version-1 agent", &Verdict{Error: v1}, 2, 1, true},
		{"version-1 agent, sent in 1", &Verdict{Error: v1}, 1, 1, false},
		{"refusal of something else", &Verdict{Error: "no profile"}, 2, 0, false},
		{"older agent says its version", &Verdict{Protocol: 1, Error: "x"}, 2, 1, true},
		{"agent too old", &Verdict{Protocol: -3, Error: "x"}, 2, -3, false},
		{"newer agent", &Verdict{Protocol: 3, Error: "x"}, 2, 3, false},
		{"acceptance", &Verdict{OK: true, Error: v1}, 2, 0, false},
		{"no answer", nil, 2, 0, false},
	} {
		if got, ok := tt.v.OlderVersion(tt.sent); got != tt.want || ok != tt.ok {
			t.Errorf("%s: OlderVersion = %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
