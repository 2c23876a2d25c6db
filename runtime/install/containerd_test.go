package install

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocigate/ocigate/internal/testenv"
)

const ourSpec = "/etc/containerd/ocigate-base-spec.json"

// runcTableLines returns the base_runtime_spec lines of the CRI runc
// table.
func runcTableLines(t *testing.T, b []byte) (header string, body []string) {
	t.Helper()
	c, err := readCRIConfig(b)
	if err != nil {
		t.Fatalf("result does not read back: %v\n%s", err, b)
	}
	if c.header < 0 {
		t.Fatalf("no runc table in\n%s", b)
	}
	for _, l := range c.doc.lines[c.header+1 : c.end] {
		body = append(body, strings.TrimSpace(l.text))
	}
	return strings.TrimSpace(c.doc.lines[c.header].text), body
}

func TestSetBaseRuntimeSpec(t *testing.T) {
	tests := []struct {
		fixture    string
		edit       func(string) string
		header     string
		wantLine   string
		wantChange string // the one line that differs from the input ("" = a block was appended)
	}{
		{"containerd-1.6-default.toml", nil, `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`,
			`base_runtime_spec = "` + ourSpec + `"`, `base_runtime_spec = ""`},
		{"containerd-2.x-default.toml", nil, `[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]`,
			`base_runtime_spec = '` + ourSpec + `'`, `base_runtime_spec = ''`},
		{"containerd-2.x-default.toml", func(s string) string { return strings.Replace(s, "version = 3", "version = 4", 1) },
			`[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]`, `base_runtime_spec = '` + ourSpec + `'`, `base_runtime_spec = ''`},
		{"containerd-1.6-debian.toml", nil, `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`,
			`base_runtime_spec = "` + ourSpec + `"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			in := string(fixture(t, tt.fixture))
			if tt.edit != nil {
				in = tt.edit(in)
			}
			out, err := setBaseRuntimeSpec([]byte(in), ourSpec)
			if err != nil {
				t.Fatal(err)
			}
			header, body := runcTableLines(t, out)
			if header != tt.header || !slices.Contains(body, tt.wantLine) {
				t.Fatalf("runc table %s %q, want %s with %s", header, body, tt.header, tt.wantLine)
			}
			if tt.wantChange == "" {
				if !strings.HasPrefix(string(out), in) || !slices.Contains(body, `runtime_type = "io.containerd.runc.v2"`) {
					t.Errorf("appended block:\n%s", strings.TrimPrefix(string(out), in))
				}
				return
			}
			a, b := strings.Split(in, "\n"), strings.Split(string(out), "\n")
			if len(a) != len(b) {
				t.Fatalf("%d lines became %d", len(a), len(b))
			}
			for i := range a {
				if a[i] != b[i] && (strings.TrimSpace(a[i]) != tt.wantChange || strings.TrimSpace(b[i]) != tt.wantLine) {
					t.Errorf("line %d: %q became %q", i+1, a[i], b[i])
				}
			}
		})
	}
}

func TestSetBaseRuntimeSpecInsertsIntoTable(t *testing.T) {
	in := "version = 2\r\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\r\n    runtime_type = \"io.containerd.runc.v2\" # shim\r\n" +
		"    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\r\n      SystemdCgroup = true\r\n"
	out, err := setBaseRuntimeSpec([]byte(in), ourSpec)
	if err != nil {
		t.Fatal(err)
	}
	want := "version = 2\r\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\r\n    base_runtime_spec = \"" + ourSpec + "\"\r\n" +
		"    runtime_type = \"io.containerd.runc.v2\" # shim\r\n" +
		"    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\r\n      SystemdCgroup = true\r\n"
	if string(out) != want {
		t.Errorf("got\n%q\nwant\n%q", out, want)
	}
	back, err := stripContainerd(out, []byte(in), ourSpec)
	if err != nil || string(back) != in {
		t.Errorf("strip: %v\n%q", err, back)
	}
}

func TestSetBaseRuntimeSpecKeepsComment(t *testing.T) {
	in := "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  base_runtime_spec = \"\"   # set by ocigate\n"
	out, err := setBaseRuntimeSpec([]byte(in), ourSpec)
	if err != nil {
		t.Fatal(err)
	}
	if want := "  base_runtime_spec = \"" + ourSpec + "\"   # set by ocigate\n"; !strings.HasSuffix(string(out), want) {
		t.Errorf("got %q", out)
	}
}

func TestSetBaseRuntimeSpecRefuses(t *testing.T) {
	const v2 = "version = 2\n"
	const runc = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]` + "\n"
	for name, tt := range map[string]struct{ in, want string }{
		"version 1":         {"root = \"/var/lib/containerd\"\n", "config version 1"},
		"version 1 stated":  {"version = 1\n", "config version 1"},
		"version 9":         {"version = 9\n", "config version 9 is not supported"},
		"version not int":   {"version = \"2\"\n", "is not a number"},
		"other base spec":   {v2 + runc + "  base_runtime_spec = \"/etc/mine.json\"\n", `already has base_runtime_spec = "/etc/mine.json"`},
		"twice":             {v2 + runc + runc, "defined twice"},
		"spec set twice":    {v2 + runc + "base_runtime_spec = \"\"\nbase_runtime_spec = \"\"\n", "set twice"},
		"multi-line value":  {v2 + runc + "base_runtime_spec = \"\"\"\n\"\"\"\n", "not a one-line string"},
		"inline runtimes":   {v2 + "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  runtimes = { runc = { runtime_type = \"x\" } }\n", "inline table?"},
		"inline runc":       {v2 + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes]\n  runc = {}\n", "inline table?"},
		"dotted key":        {v2 + "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  runtimes.runc.runtime_type = \"x\"\n", "dotted key"},
		"top-level dotted":  {v2 + "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.base_runtime_spec = \"\"\n", "dotted key"},
		"array of tables":   {v2 + "[[plugins]]\n", "array of tables"},
		"broken TOML":       {v2 + "[plugins\n", "cannot read this TOML safely"},
		"unterminated list": {v2 + "x = [\n", "cannot read this TOML safely"},
	} {
		if _, err := setBaseRuntimeSpec([]byte(tt.in), ourSpec); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, tt.want)
		}
	}
	// Other runtimes' tables and dotted keys elsewhere are fine.
	ok := "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata]\n  options.ConfigPath = \"/k\"\n" +
		"[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"kata\"\n"
	if _, err := setBaseRuntimeSpec([]byte(ok), ourSpec); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestContainerdNotes(t *testing.T) {
	e := newEnv(t)
	e.o.Config = e.put(t, "etc/containerd/config.toml", []byte("version = 2\ndisabled_plugins = [\"cri\"]\n"+
		"[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"crun\"\n"), 0o644)
	p := planInstall(t, "containerd", e.o)
	notes := strings.Join(p.Notes, "\n")
	for _, want := range []string{"CRI plugin is disabled", `default CRI runtime is "crun"`, "restart containerd", "--runc-binary"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

// containerd itself reads the edited configs: `containerd config dump`
// loads the file and prints the result (containerd 1.6 reads version 2).
func TestContainerdReadsEditedConfig(t *testing.T) {
	bin := testenv.NeedTool(t, "containerd")
	for _, name := range []string{"containerd-1.6-default.toml", "containerd-1.6-debian.toml"} {
		t.Run(name, func(t *testing.T) {
			out, err := setBaseRuntimeSpec(fixture(t, name), ourSpec)
			if err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(cfg, out, 0o644); err != nil {
				t.Fatal(err)
			}
			dump, err := exec.Command(bin, "-c", cfg, "config", "dump").CombinedOutput()
			if err != nil {
				t.Fatalf("containerd config dump: %v\n%s", err, dump)
			}
			_, body := runcTableLines(t, dump)
			for _, want := range []string{`base_runtime_spec = "` + ourSpec + `"`, `runtime_type = "io.containerd.runc.v2"`} {
				if !slices.Contains(body, want) {
					t.Errorf("containerd's view of the runc runtime lacks %s:\n%q", want, body)
				}
			}
		})
	}
}

// The base spec is `ctr oci spec` (containerd 1.6) with the hooks, less
// the namespace's cgroupsPath and plus the powercap mask.
func TestContainerdSpec(t *testing.T) {
	b, err := ContainerdSpec(Options{HookPath: "/usr/local/bin/ocigate-hook", Socket: "/run/s.sock"})
	if err != nil {
		t.Fatal(err)
	}
	var got specs.Spec
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Hooks == nil || len(got.Hooks.CreateRuntime) != 1 || len(got.Hooks.Poststop) != 1 ||
		!reflect.DeepEqual(got.Hooks.CreateRuntime[0].Args, []string{"ocigate-hook", "--socket", "/run/s.sock", "createRuntime"}) {
		t.Fatalf("hooks %+v", got.Hooks)
	}
	refs := map[string][]byte{"fixture": fixture(t, "ctr-oci-spec-1.6.json")}
	if ctr, err := testenv.FindTool("ctr"); err == nil {
		live, err := exec.Command(ctr, "oci", "spec").Output()
		if err != nil {
			t.Fatalf("ctr oci spec: %v", err)
		}
		refs["ctr oci spec"] = live
	} else if testenv.ToolsRequired() {
		t.Fatal(err)
	}
	for name, ref := range refs {
		var want specs.Spec
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want.Linux.CgroupsPath = ""
		want.Linux.MaskedPaths = slices.Insert(want.Linux.MaskedPaths, len(want.Linux.MaskedPaths)-1, "/sys/devices/virtual/powercap")
		g := got
		g.Hooks = nil
		a, _ := json.Marshal(g)
		w, _ := json.Marshal(want)
		if !bytes.Equal(a, w) {
			t.Errorf("spec differs from %s:\n got %s\nwant %s", name, a, w)
		}
	}
}

// With NRIGate the base runtime spec runs the hook as the NRI plugin's
// gate, at createRuntime only (the plugin unregisters).
func TestContainerdSpecNRIGate(t *testing.T) {
	b, err := ContainerdSpec(Options{HookPath: "/opt/ocigate/ocigate-hook", Socket: "/run/x/agentd.sock", NRIGate: true,
		ExemptNamespaces: "kube-system,ocigate", ExemptFile: "/run/x/exempt-namespaces"})
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Hooks map[string][]struct{ Args []string }
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	want := []string{"ocigate-hook", "--socket", "/run/x/agentd.sock", "--nri-gate", "--exempt-namespaces=kube-system,ocigate",
		"--exempt-file=/run/x/exempt-namespaces", "createRuntime"}
	if len(s.Hooks) != 1 || len(s.Hooks["createRuntime"]) != 1 || !slices.Equal(s.Hooks["createRuntime"][0].Args, want) {
		t.Fatalf("hooks %+v, want createRuntime only with %q", s.Hooks, want)
	}
}
