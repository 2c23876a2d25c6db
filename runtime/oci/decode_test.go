package oci

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/plainjson"
	"github.com/ocigate/ocigate/internal/plainjson/difftest"
)

// decodeStd is encoding/json's decoding of b into v, with decodeObject's
// rule that nothing but whitespace follows the value.
func decodeStd(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimLeft(b[dec.InputOffset():], jsonSpace)) > 0 {
		return os.ErrInvalid
	}
	return nil
}

// parsed is what parse made of b, or the scanner's error (with the
// whole document read).
func parsed[T any](b []byte, parse func([]byte) (T, *plainjson.Scanner)) (T, error) {
	v, s := parse(b)
	if s.Err() == nil {
		s.End()
	}
	return v, s.Err()
}

// The documents the hook is given decode: a state as runc writes it and
// the config.json of `runc spec` (testdata/runc-spec.json).
func TestDecodeRuncDocuments(t *testing.T) {
	if _, err := parsed([]byte(runcState), parseState); err != nil {
		t.Errorf("runc's state: %v", err)
	}
	spec, err := os.ReadFile("testdata/runc-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := parsed(spec, parseBundleView)
	if err != nil {
		t.Fatalf("runc spec's config.json: %v", err)
	}
	if v.Version == "" || v.Linux == nil || v.Linux.CgroupsPath != "/ocigate-demo/c1" || v.Process == nil ||
		len(v.Process.Args) == 0 || v.Annotations["ocigate.io/profile"] != "web" {
		t.Fatalf("decode of runc spec: %+v", v)
	}
}

// Deep nesting is read up to encoding/json's limit and refused beyond,
// as encoding/json refuses it (a test of its own: documents this large
// slow the fuzzer's mutations down).
func TestDecodeDepthMatchesEncodingJSON(t *testing.T) {
	for _, n := range []int{plainjson.MaxDepth, plainjson.MaxDepth + 1} {
		doc := `{"ociVersion":"1","x":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`
		decodeMatches(t, []byte(doc))
	}
}

// Whatever the input, decoding a state or a config.json agrees with
// encoding/json's decoding into the same type: both fail, or both
// succeed with the same values.
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	spec, err := os.ReadFile("testdata/runc-spec.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{runcState, string(spec), minimalConfig,
		`{"ociVersion":"1.0.2","id":"c1","pid":-0,"bundle":"/b","x":[1,2.5e-3,true,false,null,{"a":[]}]}`,
		// strings: escapes as Go's encoders write them, non-ASCII, invalid
		`{"id":"a\u0026b\u003c\"\\\/\b\f\n\r\t"}`, `{"process":{"args":["sh","-c","echo é \ud83d\ude00"]}}`,
		`{"id":"\ud83d"}`, `{"id":"\ude00\ud83dx"}`, "{\"id\":\"\xff\xed\xa0\x80\"}", "{\"id\":\"a\x01\"}",
		`{"id":"\q"}`, `{"id":"\u12x4"}`,
		// member names in another case, Unicode-folded, escaped
		`{"ociVersion":"1.0.2","OciVersion":"x"}`, `{"PID":3}`, "{\"ociVer\u017fion\":\"1\"}", `{"\u0069d":"c"}`,
		`{"process":{"args":["a"],"ARGS":[]}}`, `{"LINUX":{"CGROUPSPATH":"/x"}}`,
		// repeated members
		`{"pid":1,"pid":2}`, `{"annotations":{"k":"v","k":"w"}}`, `{"annotations":{"a":"1"},"annotations":{"b":"2"}}`,
		`{"process":{"args":["a","b","c"]},"process":{"args":["x"]},"process":{"args":["y",null,null]}}`,
		`{"linux":{"cgroupsPath":"/a"},"linux":{}}`, `{"process":{"args":["a"]},"process":null,"process":{}}`,
		// null
		`null`, `{"annotations":null}`, `{"pid":null}`, `{"id":"a","id":null}`, `{"annotations":{"a":null}}`,
		`{"process":{"args":[null]}}`, `{"process":{"args":null}}`, `{"linux":null}`,
		// numbers and types
		`{"pid":1.0}`, `{"pid":1e2}`, `{"pid":01}`, `{"pid":9223372036854775807}`, `{"pid":9223372036854775808}`,
		`{"pid":-9223372036854775808}`, `{"pid":"1"}`, `{"linux":{"cgroupsPath":3}}`, `{"process":[]}`,
		`{"annotations":{"a":1}}`, `{"process":{"args":"sh"}}`, `[]`, `"x"`,
		// syntax and the end of the document
		`{"a":tru}`, `{"a":1}x`, `{"a":1} {}`, ` {"a":1} `, `{"a":1,}`, `{"a" 1}`, `{"process":{}}`, `{"process":{"args":[]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(decodeMatches)
}

// decodeMatches fails t unless parseState and parseBundleView agree
// with encoding/json on b.
func decodeMatches(t *testing.T, b []byte) {
	t.Helper()
	st, err := parsed(b, parseState)
	var wantSt State
	difftest.Agree(t, "state", b, st, err, &wantSt, decodeStd(b, &wantSt))
	v, err := parsed(b, parseBundleView)
	var wantV bundleView
	difftest.Agree(t, "config", b, v, err, &wantV, decodeStd(b, &wantV))
}

// BenchmarkFastBundleView decodes runc's default config.json, the bulk
// of what the hook reads before it registers.
func BenchmarkFastBundleView(b *testing.B) {
	doc, err := os.ReadFile("testdata/runc-spec.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, s := parseBundleView(doc); !s.End() {
			b.Fatal(s.Err())
		}
	}
}
