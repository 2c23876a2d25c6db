package oci

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadContainer feeds the hook's whole input: a state on stdin and the
// config.json of the bundle it names. Whatever the bytes, LoadContainer
// never panics, a nil container comes only with an error, a container
// always carries the state's id, and its failure policy is either an
// answer or an error (which the hook treats as closed).
func FuzzLoadContainer(f *testing.F) {
	f.Add([]byte(`{"ociVersion":"1.0.2","process":{"args":["sh"]},"linux":{"cgroupsPath":"/x"},"annotations":{"ocigate.io/failure-policy":"open"}}`),
		[]byte(`{"ocigate.io/failure-policy":"closed"}`))
	f.Add([]byte(`{"ociVersion":""}`), []byte(`null`))
	f.Add([]byte(`{"ociVersion":"1.0.2"} trailing`), []byte(`{}`))
	f.Add([]byte(`[]`), []byte(`{"a":"b"}`))
	f.Add([]byte(``), []byte(`{"ocigate.io/failure-policy":""}`))
	f.Fuzz(func(t *testing.T, config, stateAnnotations []byte) {
		bundle := t.TempDir()
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), config, 0o600); err != nil {
			t.Fatal(err)
		}
		state := `{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":4242,"bundle":` + quote(bundle) +
			`,"annotations":` + string(stateAnnotations) + `}`
		c, err := LoadContainer(strings.NewReader(state))
		if c == nil {
			if err == nil {
				t.Fatal("nil container without an error")
			}
			return
		}
		if c.ID != "c1" || c.Pid != 4242 || c.Bundle != bundle {
			t.Fatalf("container %+v does not carry the state", c)
		}
		if open, ferr := c.FailOpen(); ferr != nil && open {
			t.Fatalf("FailOpen = open together with error %v", ferr)
		}
	})
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}
