package agentconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The file sets run's flags by name; flags given on the command line
// win; unknown keys and bad values are refused naming the file.
func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentd.yaml")
	body := "# comment\nevents-file: /var/log/ocigate/events.jsonl\nevents-max-size: 10MiB\nreconcile-interval: 5s\n" +
		"adopt: false\nruncRoots: x\n"
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(body)
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), `unknown key "runcRoots"`) {
		t.Fatalf("unknown key: %v", err)
	}
	write(strings.Replace(body, "runcRoots: x", "runc-roots: [/run/runc, /run/other]", 1))
	c, err := Load(path, map[string]string{"reconcile-interval": "1s", "log-format": "json"})
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.EventsFile, want.EventsMaxSize, want.ReconcileInterval, want.Adopt = "/var/log/ocigate/events.jsonl", 10<<20, time.Second, false
	want.RuncRoots, want.LogFormat = []string{"/run/runc", "/run/other"}, "json"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("loaded\n %+v\nwant\n %+v", c, want)
	}
	write("log-format: xml\n")
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), `--log-format "xml"`) {
		t.Fatalf("bad value: %v", err)
	}
	if c, err := Load("", nil); err != nil || !reflect.DeepEqual(c, Default()) {
		t.Fatalf("no file: %+v %v", c, err)
	}
}
