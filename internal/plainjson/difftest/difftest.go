// Package difftest holds internal/plainjson's callers to encoding/json:
// their differential tests decode each input both ways and Agree.
package difftest

import (
	"reflect"
	"testing"
)

// Agree fails t unless both decodes of b failed, or both succeeded with
// equal values (reflect.DeepEqual); got and err are plainjson's, want and
// wantErr encoding/json's, and what names the document.
func Agree(t testing.TB, what string, b []byte, got any, err error, want any, wantErr error) {
	t.Helper()
	switch {
	case err == nil && wantErr != nil:
		t.Fatalf("%s %q: accepted, encoding/json: %v", what, b, wantErr)
	case err != nil && wantErr == nil:
		t.Fatalf("%s %q: %v; encoding/json accepts it", what, b, err)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("%s %q: got %+v, encoding/json %+v", what, b, got, want)
	}
}
