package oci

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// decodeStd is encoding/json's decoding of b into v, with decodeState's
// rule that nothing but whitespace follows the object.
func decodeStd(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimLeft(b[dec.InputOffset():], jsonSpace)) > 0 {
		return errTrailing
	}
	return nil
}

var errTrailing = os.ErrInvalid

// The documents the hook is given take the fast path: a state as runc
// writes it and the config.json of `runc spec` (testdata/runc-spec.json).
func TestFastPathTakesRuncDocuments(t *testing.T) {
	if _, ok := fastState([]byte(runcState)); !ok {
		t.Errorf("runc's state left the fast subset: %s", runcState)
	}
	spec, err := os.ReadFile("testdata/runc-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	v, ok := fastBundleView(spec)
	if !ok {
		t.Fatal("runc spec's config.json left the fast subset")
	}
	if v.Version == "" || v.Linux == nil || v.Linux.CgroupsPath != "/ocigate-demo/c1" || v.Process == nil ||
		len(v.Process.Args) == 0 || v.Annotations["ocigate.io/profile"] != "web" {
		t.Fatalf("fast decode of runc spec: %+v", v)
	}
}

// Whatever the fast path accepts, encoding/json decodes without error to
// the same values; what it refuses goes to encoding/json.
func FuzzFastDecodeMatchesEncodingJSON(f *testing.F) {
	spec, err := os.ReadFile("testdata/runc-spec.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{runcState, string(spec), minimalConfig,
		`{"ociVersion":"1.0.2","id":"c1","pid":-0,"bundle":"/b","x":[1,2.5e-3,true,false,null,{"a":[]}]}`,
		`{"ociVersion":"1.0.2","OciVersion":"x"}`, `{"pid":1,"pid":2}`, `{"annotations":null}`, `{"id":"a\"b"}`,
		`{"id":"é"}`, `{"pid":1.0}`, `{"pid":01}`, `{"process":{"args":["a"],"ARGS":[]}}`, `{"linux":{"cgroupsPath":3}}`,
		`{"a":tru}`, `{"a":1}x`, `{"annotations":{"k":"v","k":"w"}}`, `{"process":{}}`, `{"process":{"args":[]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, ok := fastState(b); ok {
			var want specs.State
			if err := decodeStd(b, &want); err != nil {
				t.Fatalf("fast state decode accepted %q, encoding/json: %v", b, err)
			}
			if !reflect.DeepEqual(*st, want) {
				t.Fatalf("state %q: fast %+v, encoding/json %+v", b, *st, want)
			}
		}
		if v, ok := fastBundleView(b); ok {
			var want bundleView
			if err := decodeStd(b, &want); err != nil {
				t.Fatalf("fast config decode accepted %q, encoding/json: %v", b, err)
			}
			if !reflect.DeepEqual(*v, want) {
				t.Fatalf("config %q: fast %+v, encoding/json %+v", b, *v, want)
			}
		}
	})
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
		if _, ok := fastBundleView(doc); !ok {
			b.Fatal("runc's config.json left the plain subset")
		}
	}
}
