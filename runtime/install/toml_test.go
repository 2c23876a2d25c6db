package install

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseTOMLRoundTrip(t *testing.T) {
	for _, name := range []string{"containerd-1.6-default.toml", "containerd-1.6-debian.toml", "containerd-2.x-default.toml"} {
		b := fixture(t, name)
		for _, in := range []string{string(b), strings.ReplaceAll(string(b), "\n", "\r\n"), strings.TrimSuffix(string(b), "\n")} {
			doc, err := parseTOML([]byte(in))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := string(doc.bytes()); got != in {
				t.Errorf("%s: bytes() differs from the input", name)
			}
		}
	}
}

func TestParseTOMLLines(t *testing.T) {
	const in = `# comment
version = 2 # trailing
"quoted.key" = 'x'
a . b . "c d" = 1
arr = [
  "[not.a.table]",
  { x = "]" },
]
ml = """
[also.not.a.table]
\"""
"""
lit = '''
[nor.this]'''
[ "t" . 'u' ] # header comment
  k = "v#not-a-comment"
[[arr.tab]]
  n = 1
`
	doc, err := parseTOML([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		kind  lineKind
		key   []string
		table []string
		value string
	}
	var got []want
	for _, l := range doc.lines {
		if l.kind != lineOther {
			got = append(got, want{l.kind, l.key, l.table, l.value})
		}
	}
	exp := []want{
		{lineKey, []string{"version"}, nil, "2"},
		{lineKey, []string{"quoted.key"}, nil, "'x'"},
		{lineKey, []string{"a", "b", "c d"}, nil, "1"},
		{lineKey, []string{"arr"}, nil, "["},
		{lineKey, []string{"ml"}, nil, `"""`},
		{lineKey, []string{"lit"}, nil, "'''"},
		{lineTable, []string{"t", "u"}, nil, ""},
		{lineKey, []string{"k"}, []string{"t", "u"}, `"v#not-a-comment"`},
		{lineArrayTable, []string{"arr", "tab"}, nil, ""},
		{lineKey, []string{"n"}, []string{"arr", "tab"}, "1"},
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("lines:\n%v\nwant\n%v", got, exp)
	}
	if l := doc.lines[1]; l.text[l.valueAt:l.valueAt+len(l.value)] != "2" {
		t.Errorf("valueAt %d in %q", l.valueAt, l.text)
	}
}

func TestParseTOMLErrors(t *testing.T) {
	for in, want := range map[string]string{
		"a = [\n1,\n":        "unterminated multi-line value",
		"a = \"x\n":          "line 1: unterminated string",
		"[a\n":               "does not end with ]",
		"[[a]\n":             "does not end with ]]",
		"[a] x\n":            "does not end with ]",
		"a\n":                `key a without "="`,
		"a =\n":              "has no value",
		"= 1\n":              "invalid key character",
		"a = ]\n":            "unbalanced",
		"\"a\\q\" = 1\n":     "quoted key",
		"a = \"\xff\"\n":     "not UTF-8",
		"ml = \"\"\"\nx\n":   "unterminated multi-line value",
		"'unterminated = 1":  "unterminated quoted key",
		"\"unterminated = 1": "unterminated quoted key",
	} {
		if _, err := parseTOML([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
}

func TestTOMLStrings(t *testing.T) {
	for in, want := range map[string]string{`""`: "", `"a\"b"`: `a"b`, `'/x/y'`: "/x/y", `''`: ""} {
		if got, ok := tomlString(in); !ok || got != want {
			t.Errorf("tomlString(%s) = %q, %v", in, got, ok)
		}
	}
	for _, in := range []string{`"""x"""`, `'''x'''`, `1`, `"x`, `'a'b'`} {
		if _, ok := tomlString(in); ok {
			t.Errorf("tomlString(%s) accepted", in)
		}
	}
	if got := quoteTOML(`/a "b"\c`, true); got != `'/a "b"\c'` {
		t.Errorf("literal: %s", got)
	}
	if got := quoteTOML("/it's", true); got != `"/it's"` {
		t.Errorf("literal with a quote: %s", got)
	}
	if got := quoteTOML("a\"\\\tb", false); got != `"a\"\\\u0009b"` {
		t.Errorf("basic: %s", got)
	}
	if got := tomlKey([]string{"plugins", "io.containerd.cri.v1.runtime", "runc"}, true); got != "plugins.'io.containerd.cri.v1.runtime'.runc" {
		t.Errorf("key: %s", got)
	}
}
