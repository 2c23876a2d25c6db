package plainjson

import (
	"encoding/json"
	"testing"
)

// What the scanner accepts as a value is valid JSON; plain documents
// are accepted, and the subset's edges are refused.
func TestSkipSubset(t *testing.T) {
	for doc, want := range map[string]bool{
		`{"a":[1,-0.5,2e10,true,false,null,{"b":"c d"}],"e":{}}`: true,
		` [ ] `:          true,
		`{"a":"\n"}`:     false, // an escape
		`{"a":"é"}`:      false, // not ASCII
		`{"a":01}`:       false,
		`{"a":1.}`:       false,
		`{"a":tru}`:      false,
		`{"a":1,}`:       false,
		`{"a" 1}`:        false,
		`{"a":1} x`:      false,
		`"\u0041"`:       false,
		`{"a":[1,2]`:     false,
		`{"a":-}`:        false,
		`{"a":1e}`:       false,
		`{"a":"x`:        false,
		`{"a":truex}`:    false,
		`{"a":[[[[]]]]}`: true,
	} {
		s := New([]byte(doc))
		if got := s.Skip() && s.End(); got != want {
			t.Errorf("%s: accepted %v, want %v", doc, got, want)
		}
	}
}

func FuzzSkipAcceptsOnlyValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,-0.5,2e10,true,false,null]}`, `{"a":"b"}`, `[1,{"x":[]}]`, `{"a":01}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := New(b)
		if s.Skip() && s.End() && !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
	})
}

// Fields refuses a repeated or case-folded wanted member and skips the
// rest; Bool, Int and Str refuse null and other types.
func TestFields(t *testing.T) {
	read := func(doc string) (string, int, bool, bool) {
		s := New([]byte(doc))
		var str string
		var n int
		var b bool
		ok := s.Fields(map[string]func() bool{
			"s": s.StrInto(&str),
			"n": func() (ok bool) { n, ok = s.Int(); return ok },
			"b": func() (ok bool) { b, ok = s.Bool(); return ok },
		}) && s.End()
		return str, n, b, ok
	}
	if str, n, b, ok := read(`{"x":{"s":1},"s":"v","n":-12,"b":true}`); !ok || str != "v" || n != -12 || !b {
		t.Errorf("plain document: %q %d %v %v", str, n, b, ok)
	}
	for _, doc := range []string{`{"s":"a","s":"b"}`, `{"S":"a"}`, `{"s":null}`, `{"n":1.5}`, `{"n":"1"}`, `{"b":null}`, `{"b":1}`} {
		if _, _, _, ok := read(doc); ok {
			t.Errorf("%s: accepted", doc)
		}
	}
}
