package policyfixture

import "testing"

func TestIndent(t *testing.T) {
	want := "    a:\n    - b\n      c: d\n"
	if got := Indent("a:\n- b\n  c: d\n", "    "); got != want {
		t.Fatalf("Indent = %q, want %q", got, want)
	}
}
