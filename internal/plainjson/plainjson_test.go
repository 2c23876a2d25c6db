package plainjson

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/plainjson/difftest"
)

// doc is a struct of every shape the readers decode, for comparing
// them with encoding/json.
type doc struct {
	S   string            `json:"s"`
	N   int               `json:"n"`
	B   bool              `json:"b"`
	M   map[string]string `json:"m"`
	L   []string          `json:"l"`
	P   *doc              `json:"p"`
	Key string            `json:"key"`
}

// readDoc reads a doc's members as a caller of Fields does.
func readDoc(s *Scanner, d *doc) bool {
	return s.Fields(map[string]func() bool{
		"s":   s.StrInto(&d.S),
		"n":   s.IntInto(&d.N),
		"b":   s.BoolInto(&d.B),
		"m":   s.MapInto(&d.M),
		"l":   s.StringsInto(&d.L),
		"key": s.StrInto(&d.Key),
		"p": func() bool {
			if s.Null() {
				d.P = nil
				return true
			}
			if d.P == nil {
				d.P = &doc{}
			}
			return readDoc(s, d.P)
		},
	})
}

// decodeDoc decodes b into a doc with the readers, and the whole
// document as End checks.
func decodeDoc(b []byte) (*doc, error) {
	var d doc
	s := New(b)
	if !readDoc(s, &d) || !s.End() {
		return nil, s.Err()
	}
	return &d, nil
}

// seeds has an input for every rule of the package doc.
var seeds = []string{
	// strings: escapes, surrogates, invalid UTF-8, control bytes
	`{"s":"a\"b\\c\/d\b\f\n\r\t"}`, `{"s":"\u0041\u00e9\u20AC\ud83d\ude00"}`, `{"s":"\ud83d"}`,
	`{"s":"\ude00\ud83d"}`, `{"s":"\ud83d\u0041"}`, `{"s":"\ud83d\ud83d\ude00"}`, `{"s":"\ud83d\uZZZZ"}`,
	"{\"s\":\"\xff\xfe\"}", "{\"s\":\"\xed\xa0\x80\"}", "{\"s\":\"\xe2\x82\"}", "{\"s\":\"é€😀\"}",
	"{\"s\":\"a\x01\"}", "{\"s\":\"a\x7f\"}", `{"s":"\x"}`, `{"s":"\u12"}`, `{"s":"\u12G4"}`, `{"s":"\`,
	`{"s":"\u0000"}`, `{"s":"x`,
	// member names: exact, case-folded (ASCII and Unicode), escaped
	`{"S":"a"}`, `{"KEY":"a"}`, `{"\u212Aey":"a"}`, "{\"\u017f\":\"a\"}", `{"k\u0045y":"a"}`, `{"s":"a","S":"b"}`,
	`{"S":"a","s":"b"}`, "{\"k\xffy\":\"a\"}", `{"\u0073":"a"}`, `{"ke":"a","keyy":"b"}`,
	// repeated members
	`{"s":"a","s":"b"}`, `{"n":1,"n":2}`, `{"b":true,"b":false}`, `{"m":{"a":"1","b":"2"},"m":{"b":"3"}}`,
	`{"p":{"s":"a","n":1},"p":{"n":2}}`, `{"l":["a","b","c"],"l":["x"]}`, `{"l":["a","b"],"l":["c",null]}`,
	`{"l":["a","b","c"],"l":["x"],"l":["y",null,null,null]}`, `{"l":["a"],"l":[],"l":[null]}`,
	// null
	`null`, `{"s":"a","s":null}`, `{"n":1,"n":null}`, `{"b":true,"b":null}`, `{"m":{"a":"b"},"m":null}`,
	`{"l":["a"],"l":null}`, `{"p":{"s":"a"},"p":null}`, `{"l":[null,"a"]}`, `{"m":{"a":null}}`,
	`{"m":{"a":"x","a":null}}`,
	// numbers
	`{"n":-0}`, `{"n":9223372036854775807}`, `{"n":-9223372036854775808}`, `{"n":9223372036854775808}`,
	`{"n":-9223372036854775809}`, `{"n":1.0}`, `{"n":1e2}`, `{"n":1E+2}`, `{"n":01}`, `{"n":-}`, `{"n":1.}`,
	`{"n":1e}`, `{"n":00}`, `{"n":123456789012345678901234}`, `{"x":-1.5e-300}`, `{"x":1E1000}`,
	// types
	`{"n":"1"}`, `{"s":1}`, `{"b":1}`, `{"b":"true"}`, `{"m":[]}`, `{"m":{"a":1}}`, `{"l":{}}`, `{"l":[1]}`,
	`{"p":[]}`, `{"p":"x"}`, `[]`, `"x"`, `1`, `true`,
	// syntax and the document's end
	` {"s":"a"} `, "\t\r\n{}\n", `{"s":"a"} x`, `{"s":"a"}{}`, `{"a":tru}`, `{"a":truex}`, `{"a":nul}`,
	`{"a":1,}`, `{"a" 1}`, `{,}`, `{"a":[1,]}`, `{"a":[1 2]}`, `{"a":}`, `{"a"`, `{`, ``, ` `, `{"x":[{"y":[]}]}`,
	`{'a':1}`, "\xef\xbb\xbf{}", `{"x":"\u00"}`,
}

// deep nests n arrays inside a member of an object.
func deep(n int) string { return `{"x":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}` }

// For any input, the readers and encoding/json agree on success and,
// when both succeed, on the values.
func FuzzReadersMatchEncodingJSON(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeAll(t, b)
	})
}

// Nesting up to MaxDepth is read, deeper is refused, as by
// encoding/json (a test of its own: documents this large slow the
// fuzzer's mutations down).
func TestDepth(t *testing.T) {
	for _, n := range []int{MaxDepth, MaxDepth + 1} {
		decodeAll(t, []byte(deep(n)))
		decodeAll(t, []byte(strings.Repeat(`{"p":`, n-1)+`{}`+strings.Repeat(`}`, n-1)))
	}
}

// decodeAll compares every reader with encoding/json on b.
func decodeAll(t *testing.T, b []byte) {
	t.Helper()
	var want doc
	wantErr := json.Unmarshal(b, &want)
	got, err := decodeDoc(b)
	difftest.Agree(t, "doc", b, got, err, &want, wantErr)
	same[string](t, b, "string", func(s *Scanner) (string, bool) { return s.Str() })
	same[int](t, b, "int", func(s *Scanner) (int, bool) { return s.Int() })
	same[bool](t, b, "bool", func(s *Scanner) (bool, bool) { return s.Bool() })
	same[[]string](t, b, "[]string", func(s *Scanner) ([]string, bool) { return s.Strings() })
	same[map[string]string](t, b, "map", func(s *Scanner) (map[string]string, bool) { return s.StringMap() })
	s := New(b)
	if ok := s.Skip() && s.End(); ok != json.Valid(b) {
		t.Fatalf("Skip %q: %v (%v), json.Valid %v", b, ok, s.Err(), !ok)
	}
}

// same compares the reader read with json.Unmarshal into a T.
func same[T any](t *testing.T, b []byte, what string, read func(*Scanner) (T, bool)) {
	t.Helper()
	var want T
	wantErr := json.Unmarshal(b, &want)
	s := New(b)
	got, ok := read(s)
	difftest.Agree(t, what, b, got, errOf(s, ok && s.End()), want, wantErr)
}

// errOf is s's error unless ok.
func errOf(s *Scanner, ok bool) error {
	if ok {
		return nil
	}
	if s.Err() == nil {
		return &Error{Msg: "failed without an error"}
	}
	return s.Err()
}

// The rules hold with the values encoding/json gives (spelled out
// here, so that a change of either side shows).
func TestReaders(t *testing.T) {
	for in, want := range map[string]doc{
		`{"s":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`:         {S: "a\"\\/\b\f\n\r\té😀"},
		`{"s":"\ud83d|\ude00\ud83d\u0041"}`:                   {S: "\uFFFD|\uFFFD\uFFFDA"},
		"{\"s\":\"a\xffb\xed\xa0\x80\"}":                      {S: "a\uFFFDb\uFFFD\uFFFD\uFFFD"},
		`{"KEY":"a","\u212Aey":"b"}`:                          {Key: "b"},
		"{\"\u017f\":\"a\"}":                                  {S: "a"},
		`{"s":"a","s":null,"n":3,"n":null,"b":true,"b":null}`: {S: "a", N: 3, B: true},
		`{"m":{"a":"1","b":"2"},"m":{"b":"3","c":null}}`:      {M: map[string]string{"a": "1", "b": "3", "c": ""}},
		`{"p":{"s":"a","n":1},"p":{"n":2}}`:                   {P: &doc{S: "a", N: 2}},
		`{"l":["a","b","c"],"l":["x"],"l":["y",null,null]}`:   {L: []string{"y", "b", "c"}},
		`{"l":["a"],"l":[]}`:                                  {L: []string{}},
		`{"l":[null],"m":null,"p":null}`:                      {L: []string{""}},
		`{"n":-9223372036854775808}`:                          {N: -9223372036854775808},
	} {
		got, err := decodeDoc([]byte(in))
		if err != nil || !reflect.DeepEqual(*got, want) {
			t.Errorf("%s: %#v, %v; want %#v", in, got, err, want)
		}
	}
}

// Errors name what was wrong and where.
func TestErrors(t *testing.T) {
	for in, want := range map[string]string{
		`{"s":"a",  "x" 1}`:             `invalid character '1' after object key at offset 15`,
		`{"n":"1"}`:                     `member "n": want an integer, got a string at offset 5`,
		`{"p":{"PID":1,"n":1.5}}`:       `member "p.n": want an integer, got number 1.5 at offset 18`,
		`{"N":99999999999999999999}`:    `member "N": want an integer, got number 99999999999999999999 at offset 5`,
		`{"m":{"a":1}}`:                 `member "m": want a string, got a number at offset 10`,
		`{"l":"a"}`:                     `member "l": want an array of strings, got a string at offset 5`,
		`[]`:                            `want an object, got an array at offset 0`,
		`{"s":"a`:                       `unexpected end of JSON input at offset 7`,
		"{\"s\":\"a\x01\"}":             `invalid character '\x01' in string literal at offset 7`,
		`{"s":"\q"}`:                    `invalid character 'q' in string escape code at offset 7`,
		`{"x":tru}`:                     `invalid character '}' in literal true (expecting 'e') at offset 8`,
		`{} x`:                          `invalid character 'x' after top-level value at offset 3`,
		`{"a":1,}`:                      `invalid character '}' looking for beginning of object key string at offset 7`,
		deep(MaxDepth + 1)[:MaxDepth+6]: `nesting deeper than 10000 levels at offset 10004`,
	} {
		if _, err := decodeDoc([]byte(in)); err == nil || err.Error() != want {
			t.Errorf("%.40s: error %v, want %s", in, err, want)
		}
	}
}
