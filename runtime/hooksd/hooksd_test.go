package hooksd

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// ociHook mirrors the oci-hooks(5) 1.0.0 schema; decoding with
// DisallowUnknownFields catches keys the schema does not have.
type ociHook struct {
	Version string `json:"version"`
	Hook    struct {
		Path    string   `json:"path"`
		Args    []string `json:"args"`
		Env     []string `json:"env"`
		Timeout *int     `json:"timeout"`
	} `json:"hook"`
	When struct {
		Always        *bool             `json:"always"`
		Annotations   map[string]string `json:"annotations"`
		Commands      []string          `json:"commands"`
		HasBindMounts *bool             `json:"hasBindMounts"`
	} `json:"when"`
	Stages []string `json:"stages"`
}

var ociStages = map[string]bool{"prestart": true, "createRuntime": true, "createContainer": true,
	"startContainer": true, "poststart": true, "poststop": true}

func decodeHook(t *testing.T, name string, b []byte) ociHook {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var h ociHook
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("%s is not an oci-hooks 1.0.0 document: %v\n%s", name, err, b)
	}
	if h.Version != "1.0.0" {
		t.Fatalf("%s: version %q", name, h.Version)
	}
	if !filepath.IsAbs(h.Hook.Path) {
		t.Fatalf("%s: hook.path %q is not absolute", name, h.Hook.Path)
	}
	if h.When.Always == nil && h.When.Annotations == nil && h.When.Commands == nil && h.When.HasBindMounts == nil {
		t.Fatalf("%s: when has no condition", name)
	}
	if len(h.Stages) == 0 {
		t.Fatalf("%s: no stages", name)
	}
	for _, s := range h.Stages {
		if !ociStages[s] {
			t.Fatalf("%s: unknown stage %q", name, s)
		}
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		t.Errorf("%s does not end in a newline", name)
	}
	return h
}

func TestFiles(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		wantArgs func(stage string) []string
		timeout  int
	}{
		{"defaults", Options{HookPath: "/usr/local/bin/ocigate-hook"},
			func(stage string) []string { return []string{"ocigate-hook", stage} }, 0},
		{"socket, extra flags, timeout", Options{HookPath: "/opt/ocigate/bin/ocigate-hook", Socket: "/run/x/agentd.sock",
			Extra: []string{"--fail-open", "--timeout", "3s"}, Timeout: 5},
			func(stage string) []string {
				return []string{"ocigate-hook", "--socket", "/run/x/agentd.sock", "--fail-open", "--timeout", "3s", stage}
			}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := Files(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			if !reflect.DeepEqual(names, []string{"ocigate-createRuntime.json", "ocigate-poststop.json"}) {
				t.Fatalf("file names %v", names)
			}
			for _, stage := range []string{"createRuntime", "poststop"} {
				name := "ocigate-" + stage + ".json"
				h := decodeHook(t, name, files[name])
				if h.Hook.Path != tt.opts.HookPath {
					t.Errorf("%s: path %q", name, h.Hook.Path)
				}
				if !reflect.DeepEqual(h.Hook.Args, tt.wantArgs(stage)) {
					t.Errorf("%s: args %q, want %q", name, h.Hook.Args, tt.wantArgs(stage))
				}
				if !reflect.DeepEqual(h.Stages, []string{stage}) {
					t.Errorf("%s: stages %v", name, h.Stages)
				}
				if h.When.Always == nil || !*h.When.Always {
					t.Errorf("%s: when.always not true", name)
				}
				switch {
				case tt.timeout == 0 && h.Hook.Timeout != nil:
					t.Errorf("%s: timeout %d set, want none", name, *h.Hook.Timeout)
				case tt.timeout != 0 && (h.Hook.Timeout == nil || *h.Hook.Timeout != tt.timeout):
					t.Errorf("%s: timeout %v, want %d", name, h.Hook.Timeout, tt.timeout)
				}
			}
			// The caller's Extra is not modified.
			if tt.opts.Extra != nil && !reflect.DeepEqual(tt.opts.Extra, []string{"--fail-open", "--timeout", "3s"}) {
				t.Errorf("Extra changed to %q", tt.opts.Extra)
			}
		})
	}
}

func TestFilesRefusesRelativePath(t *testing.T) {
	for _, p := range []string{"", "ocigate-hook", "bin/ocigate-hook", "./ocigate-hook"} {
		files, err := Files(Options{HookPath: p})
		if err == nil || !strings.Contains(err.Error(), "is not absolute") || files != nil {
			t.Errorf("HookPath %q: files %v, err %v", p, files, err)
		}
		if _, err := Write(t.TempDir(), Options{HookPath: p}); err == nil {
			t.Errorf("Write with HookPath %q succeeded", p)
		}
	}
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc", "containers", "oci", "hooks.d")
	opts := Options{HookPath: "/usr/local/bin/ocigate-hook", Socket: "/run/ocigate/agentd.sock"}
	written, err := Write(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(written)
	want := []string{filepath.Join(dir, "ocigate-createRuntime.json"), filepath.Join(dir, "ocigate-poststop.json")}
	if !reflect.DeepEqual(written, want) {
		t.Fatalf("written %v, want %v", written, want)
	}
	files, _ := Files(opts)
	for _, p := range written {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, files[filepath.Base(p)]) {
			t.Errorf("%s differs from Files", p)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v", p, fi.Mode().Perm())
		}
	}
	// Writing again overwrites in place.
	opts.Extra = []string{"--fail-open"}
	if _, err := Write(dir, opts); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(want[0])
	if h := decodeHook(t, "rewritten", b); !reflect.DeepEqual(h.Hook.Args,
		[]string{"ocigate-hook", "--socket", "/run/ocigate/agentd.sock", "--fail-open", "createRuntime"}) {
		t.Errorf("rewritten args %q", h.Hook.Args)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("%d files in hooks.d, want 2", len(entries))
	}
}

func TestWriteDirIsAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "hooks.d")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(f, Options{HookPath: "/bin/ocigate-hook"}); err == nil || !strings.Contains(err.Error(), "create hooks dir") {
		t.Fatalf("got %v", err)
	}
}

func TestFilesNoPoststop(t *testing.T) {
	files, err := Files(Options{HookPath: "/usr/bin/ocigate-hook", NoPoststop: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files["ocigate-createRuntime.json"] == nil {
		t.Fatalf("files %v, want the createRuntime file only", maps.Keys(files))
	}
}
