package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addrPolicy is a policy whose one NotDAddr match has n distinct IPv4
// addresses in flow style, the compact form that fits 100 000 in 1 MiB.
func addrPolicy(n int) []byte {
	var b strings.Builder
	b.WriteString(head + "  - call: tcp_connect\n    args: [{index: 0, type: sock}]\n    selectors:\n" +
		"    - matchArgs:\n      - index: 0\n        operator: NotDAddr\n        values: [")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d.%d.%d.%d", i/10000+1, i/1000%10, i/100%10, i%100)
	}
	b.WriteString("]\n")
	return []byte(b.String())
}

func TestHundredThousandCIDRs(t *testing.T) {
	data := addrPolicy(MaxAddrListLen)
	if len(data) > MaxFileSize {
		t.Fatalf("test policy is %d bytes, over the limit", len(data))
	}
	start := time.Now()
	docs, err := Parse("big.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes, 100000 CIDRs parsed in %v", len(data), time.Since(start))
	m := docs[0].Policy.Kprobes[0].Selectors[0].Args[0]
	if len(m.Prefixes) != MaxAddrListLen || len(m.Raw) != MaxAddrListLen || m.Prefixes[99999].String() != "10.9.9.99/32" {
		t.Fatalf("%d prefixes, last %v", len(m.Prefixes), m.Prefixes[len(m.Prefixes)-1])
	}
}

func BenchmarkParse100kCIDRs(b *testing.B) {
	data := addrPolicy(MaxAddrListLen)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("big.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestListLimits(t *testing.T) {
	_, err := Parse("big.yaml", addrPolicy(MaxAddrListLen+1))
	checkError(t, err, "big.yaml:13: spec.kprobes[0].selectors[0].matchArgs[0].values: ", "100001 items, at most 100000 allowed")

	src := strings.Replace(string(addrPolicy(MaxListLen+1)), "NotDAddr", "DPort", 1)
	_, err = Parse("ports.yaml", []byte(src))
	checkError(t, err, "ports.yaml:13: spec.kprobes[0].selectors[0].matchArgs[0].values: ", "10001 items, at most 10000 allowed")
	if len(err.(Errors)) != 1 {
		t.Errorf("an over-long list must be one error, got %d", len(err.(Errors)))
	}
}

func TestTooManyErrors(t *testing.T) {
	src := strings.Replace(edit("- 127.0.0.0/8", strings.Repeat("- 300.0.0.1\n        ", 3000)), "        \n", "\n", 1)
	_, err := Parse("bad.yaml", []byte(src))
	es := err.(Errors)
	if len(es) != maxErrors+1 || !strings.Contains(es[len(es)-1].Msg, "too many errors") {
		t.Fatalf("%d errors, last %v", len(es), es[len(es)-1])
	}
}

func TestFileLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, append([]byte("# "), make([]byte, MaxFileSize)...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(big)
	checkError(t, err, big+":1: ", "file is larger than 1048576 bytes")

	_, err = ParseFile(filepath.Join(dir, "missing.yaml"))
	var e *Error
	if !errors.As(err, &e) || e.Line != 0 || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}

	doc := head + "  - call: tcp_close\n"
	var many strings.Builder
	for i := 0; i <= MaxDocuments; i++ {
		many.WriteString("---\n" + strings.Replace(doc, "name: p", fmt.Sprintf("name: p%d", i), 1))
	}
	_, err = Parse("many.yaml", []byte(many.String()))
	checkError(t, err, fmt.Sprintf("many.yaml:%d: ", 64*8+1), "more than 64 YAML documents in one file")

	for _, empty := range []string{"", "# only a comment\n", "---\n---\n"} {
		_, err = Parse("empty.yaml", []byte(empty))
		checkError(t, err, "empty.yaml:1: ", "no YAML document in file")
	}
	docs, err := Parse("two.yaml", []byte("---\n"+doc+"---\n"+strings.Replace(doc, "name: p", "name: q", 1)+"---\n"))
	if err != nil || len(docs) != 2 || docs[1].Policy.Name != "q" || docs[1].Policy.Line != 10 {
		t.Errorf("two documents: %v %+v", err, docs)
	}
}

func TestBillionLaughs(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	start := time.Now()
	_, err := Parse("lol.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "YAML aliases (*a0) are not supported") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestNotAMapping(t *testing.T) {
	_, err := Parse("s.yaml", []byte("- a\n- b\n"))
	checkError(t, err, "s.yaml:1: ", "a document must be a mapping with apiVersion, kind, metadata and spec, not a list")
	_, err = Parse("t.yaml", []byte("apiVersion: !custom cilium.io/v1alpha1\nkind: TracingPolicy\n"))
	checkError(t, err, "t.yaml:1: apiVersion: ", "YAML tag !custom is not supported")
}

func TestAdversarialShapes(t *testing.T) {
	for name, src := range map[string]string{
		"deep anchors":  strings.Repeat("[", 9000) + strings.Repeat("&a x,", 3000) + strings.Repeat("]", 9000),
		"deep blocks":   strings.Repeat("- ", 9000) + "x\n",
		"long value":    strings.Replace(head+connect, "tcp_connect", strings.Repeat("x", 900000), 1),
		"many unknowns": strings.Repeat("k: 1\n", 1) + strings.Repeat("[a]: 1\n", 100000),
	} {
		start := time.Now()
		_, err := Parse("adv.yaml", []byte(src))
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		for _, e := range err.(Errors) {
			if len(e.Msg) > maxMsgLen+3 || len(e.Field) > 400 {
				t.Errorf("%s: error too long: %.100s", name, e)
			}
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: took %v", name, d)
		}
	}
}
