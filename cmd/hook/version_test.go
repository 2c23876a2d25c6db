package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// --version prints the build and needs no stage.
func TestVersion(t *testing.T) {
	var out, stderr bytes.Buffer
	stdout = &out
	defer func() { stdout = os.Stdout }()
	if code := run([]string{"--version"}, strings.NewReader(""), &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got := out.String(); !strings.HasPrefix(got, "ocigate-hook dev commit ") || !strings.Contains(got, "protocol 2 (speaks 1 to 2)") {
		t.Fatalf("printed %q", got)
	}
}
