package install

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// env is a scratch root holding every file an installer touches.
type env struct {
	root string
	o    Options
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{root: root, o: Options{
		HookPath:    "/opt/ocigate/bin/ocigate-hook",
		HooksDir:    filepath.Join(root, "usr/share/containers/oci/hooks.d"),
		SpecFile:    filepath.Join(root, "etc/containerd/ocigate-base-spec.json"),
		WrapperPath: "/opt/ocigate/bin/ocigate-runc",
		StateDir:    filepath.Join(t.TempDir(), "var/lib/ocigate/install"),
	}}
	return e
}

// put writes a fixture (or content) at rel and returns the path.
func (e *env) put(t *testing.T, rel string, content []byte, mode fs.FileMode) string {
	t.Helper()
	p := filepath.Join(e.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// snapshot maps every file and directory under root to its mode and
// bytes: the state tests compare byte for byte.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		out[strings.TrimPrefix(p, root)] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSnapshot(t *testing.T, what string, a, b map[string]string) {
	t.Helper()
	for k, v := range a {
		if w, ok := b[k]; !ok {
			t.Errorf("%s: %s is gone", what, k)
		} else if v != w {
			t.Errorf("%s: %s differs:\n%s\n---\n%s", what, k, v, w)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s: %s appeared", what, k)
		}
	}
}

func planInstall(t *testing.T, runtime string, o Options) *Plan {
	t.Helper()
	p, err := Install(runtime, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func planUninstall(t *testing.T, runtime string, o Options) *Plan {
	t.Helper()
	p, err := Uninstall(runtime, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func apply(t *testing.T, p *Plan) string {
	t.Helper()
	var out bytes.Buffer
	p.Print(&out, false)
	if err := p.Apply(); err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	return out.String()
}

// roundTrip checks that a dry run writes nothing; install changes
// something; a second install changes nothing and says so; uninstall
// leaves the tree as it was.
func roundTrip(t *testing.T, e *env, runtime string) {
	t.Helper()
	roundTripOwned(t, e, runtime, false)
}

// roundTripOwned is roundTrip where, with earlierFiles, ocigate's files
// were there before install, so after the uninstall that restores them an
// uninstall without a record still finds them.
func roundTripOwned(t *testing.T, e *env, runtime string, earlierFiles bool) {
	t.Helper()
	before := snapshot(t, e.root)

	dry := planInstall(t, runtime, e.o)
	var out bytes.Buffer
	dry.Print(&out, true)
	if !dry.Changed() || !strings.Contains(out.String(), "[dry run] install "+runtime+": nothing written") {
		t.Fatalf("dry run output:\n%s", out.String())
	}
	sameSnapshot(t, "after the dry run", before, snapshot(t, e.root))

	first := apply(t, planInstall(t, runtime, e.o))
	installed := snapshot(t, e.root)
	if len(installed) == len(before) && !strings.Contains(first, "edit ") {
		t.Fatalf("install changed nothing:\n%s", first)
	}
	again := planInstall(t, runtime, e.o)
	if again.Changed() {
		t.Errorf("second install wants changes")
	}
	if msg := apply(t, again); !strings.Contains(msg, "nothing to change, ocigate is already installed") {
		t.Errorf("second install output:\n%s", msg)
	}
	sameSnapshot(t, "after the second install", installed, snapshot(t, e.root))

	dryUn := planUninstall(t, runtime, e.o)
	dryUn.Print(&out, true)
	sameSnapshot(t, "after the uninstall dry run", installed, snapshot(t, e.root))

	un := apply(t, planUninstall(t, runtime, e.o))
	sameSnapshot(t, "after uninstall", before, snapshot(t, e.root))
	if strings.Contains(un, "changed since install") {
		t.Errorf("uninstall thinks the files changed:\n%s", un)
	}
	if _, err := os.Stat(e.o.StateDir); err == nil {
		t.Errorf("state dir %s left behind", e.o.StateDir)
	}
	// Uninstalling again finds nothing of ocigate's.
	if p := planUninstall(t, runtime, e.o); p.Changed() != earlierFiles {
		var b bytes.Buffer
		p.Print(&b, true)
		t.Errorf("second uninstall: changes %v, want %v:\n%s", p.Changed(), earlierFiles, b.String())
	}
}

func TestRoundTripPodmanAndCRIO(t *testing.T) {
	for _, rt := range []string{"podman", "crio"} {
		t.Run(rt+" new directory", func(t *testing.T) { roundTrip(t, newEnv(t), rt) })
		t.Run(rt+" directory with other hooks", func(t *testing.T) {
			e := newEnv(t)
			e.put(t, "usr/share/containers/oci/hooks.d/oci-nvidia-hook.json", []byte(`{"version":"1.0.0"}`), 0o600)
			roundTrip(t, e, rt)
		})
		t.Run(rt+" earlier ocigate hooks file", func(t *testing.T) {
			e := newEnv(t)
			e.put(t, "usr/share/containers/oci/hooks.d/ocigate-poststop.json", []byte("{\"old\": true}\n"), 0o640)
			roundTripOwned(t, e, rt, true)
		})
	}
}

func TestRoundTripContainerd(t *testing.T) {
	for _, name := range []string{"containerd-1.6-default.toml", "containerd-1.6-debian.toml", "containerd-2.x-default.toml"} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.o.Config = e.put(t, "etc/containerd/config.toml", fixture(t, name), 0o600)
			roundTrip(t, e, "containerd")
		})
	}
	t.Run("no config.toml", func(t *testing.T) {
		e := newEnv(t)
		e.o.Config = filepath.Join(e.root, "etc/containerd/config.toml")
		roundTrip(t, e, "containerd")
	})
}

func TestRoundTripDocker(t *testing.T) {
	for _, name := range []string{"daemon-nvidia.json", "daemon-oneline.json", "daemon-tabs.json"} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.o.Config = e.put(t, "etc/docker/daemon.json", fixture(t, name), 0o644)
			roundTrip(t, e, "docker")
		})
	}
	t.Run("no daemon.json", func(t *testing.T) {
		e := newEnv(t)
		e.o.Config = filepath.Join(e.root, "etc/docker/daemon.json")
		roundTrip(t, e, "docker")
	})
	t.Run("empty daemon.json", func(t *testing.T) {
		e := newEnv(t)
		e.o.Config = e.put(t, "etc/docker/daemon.json", nil, 0o644)
		roundTrip(t, e, "docker")
	})
}

// A file edited by hand after install: uninstall removes only ocigate's
// entries, keeps the edit, and says so.
func TestUninstallAfterHandEdit(t *testing.T) {
	tests := []struct {
		runtime, fixture, rel string
		edit                  func(string) string
	}{
		{"containerd", "containerd-1.6-default.toml", "etc/containerd/config.toml",
			func(s string) string { return strings.Replace(s, "oom_score = 0", "oom_score = -999", 1) }},
		{"containerd", "containerd-1.6-debian.toml", "etc/containerd/config.toml",
			func(s string) string {
				return s + "\n[plugins.\"io.containerd.internal.v1.tracing\"]\n  sampling_ratio = 1.0\n"
			}},
		{"docker", "daemon-nvidia.json", "etc/docker/daemon.json",
			func(s string) string { return strings.Replace(s, `"max-size": "10m"`, `"max-size": "20m"`, 1) }},
		{"docker", "daemon-oneline.json", "etc/docker/daemon.json",
			func(s string) string { return strings.Replace(s, `"live-restore":true`, `"live-restore":false`, 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.runtime+" "+tt.fixture, func(t *testing.T) {
			e := newEnv(t)
			orig := fixture(t, tt.fixture)
			e.o.Config = e.put(t, tt.rel, orig, 0o644)
			apply(t, planInstall(t, tt.runtime, e.o))
			cur, _ := os.ReadFile(e.o.Config)
			if err := os.WriteFile(e.o.Config, []byte(tt.edit(string(cur))), 0o644); err != nil {
				t.Fatal(err)
			}
			out := apply(t, planUninstall(t, tt.runtime, e.o))
			if !strings.Contains(out, "changed since install: removed only ocigate's entries") {
				t.Errorf("uninstall output:\n%s", out)
			}
			got, _ := os.ReadFile(e.o.Config)
			if want := tt.edit(string(orig)); string(got) != want {
				t.Errorf("after uninstall:\n%s\nwant the original with the edit:\n%s", got, want)
			}
			if _, err := os.Stat(e.o.StateDir); err == nil {
				t.Errorf("state dir %s left behind", e.o.StateDir)
			}
		})
	}
}

func TestUninstallChangedOwnedFile(t *testing.T) {
	e := newEnv(t)
	apply(t, planInstall(t, "podman", e.o))
	p := filepath.Join(e.o.HooksDir, "ocigate-createRuntime.json")
	if err := os.WriteFile(p, []byte(`{"edited": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := apply(t, planUninstall(t, "podman", e.o))
	if !strings.Contains(out, "remove "+p+" (changed since install: ocigate's own file)") {
		t.Errorf("output:\n%s", out)
	}
	if _, err := os.Stat(e.o.HooksDir); err == nil {
		t.Errorf("%s (created by install) left behind", e.o.HooksDir)
	}
}

// The user took ocigate's entry out by hand and installed again: the
// original to restore is now the file as they left it.
func TestReinstallAfterManualRemoval(t *testing.T) {
	e := newEnv(t)
	e.o.Config = e.put(t, "etc/docker/daemon.json", fixture(t, "daemon-nvidia.json"), 0o644)
	apply(t, planInstall(t, "docker", e.o))
	edited := strings.Replace(string(fixture(t, "daemon-nvidia.json")), "json-file", "journald", 1)
	if err := os.WriteFile(e.o.Config, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	apply(t, planInstall(t, "docker", e.o))
	apply(t, planUninstall(t, "docker", e.o))
	if got, _ := os.ReadFile(e.o.Config); string(got) != edited {
		t.Errorf("after uninstall:\n%s\nwant:\n%s", got, edited)
	}
}

// Without an install record uninstall still finds ocigate's entries in
// the given files.
func TestUninstallWithoutRecord(t *testing.T) {
	e := newEnv(t)
	orig := fixture(t, "containerd-1.6-default.toml")
	e.o.Config = e.put(t, "etc/containerd/config.toml", orig, 0o644)
	apply(t, planInstall(t, "containerd", e.o))
	if err := os.RemoveAll(e.o.StateDir); err != nil {
		t.Fatal(err)
	}
	out := apply(t, planUninstall(t, "containerd", e.o))
	if !strings.Contains(out, "no install record") {
		t.Errorf("output:\n%s", out)
	}
	got, _ := os.ReadFile(e.o.Config)
	// Without the original the line goes; containerd's default for it is "".
	want := strings.Replace(string(orig), "          base_runtime_spec = \"\"\n          cni_conf_dir", "          cni_conf_dir", 1)
	if string(got) != want {
		t.Errorf("config after uninstall differs from the original without the line:\n%s", got)
	}
	if _, err := os.Stat(e.o.SpecFile); err == nil {
		t.Errorf("spec file left behind")
	}
}

func TestInstallRefusals(t *testing.T) {
	e := newEnv(t)
	if _, err := Install("rkt", e.o); err == nil || !strings.Contains(err.Error(), `unknown runtime "rkt"`) {
		t.Errorf("unknown runtime: %v", err)
	}
	o := e.o
	o.HookPath = "bin/ocigate-hook"
	if _, err := Install("podman", o); err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Errorf("relative hook: %v", err)
	}
	o = e.o
	o.FailOpen = true
	if _, err := Install("docker", o); err == nil || !strings.Contains(err.Error(), "--fail-open") {
		t.Errorf("docker fail-open: %v", err)
	}
	o = e.o
	o.AllowFailOpenAnnotation = true
	if _, err := Install("docker", o); err == nil || !strings.Contains(err.Error(), "--allow-fail-open-annotation") {
		t.Errorf("docker fail-open annotation: %v", err)
	}
	o = e.o
	o.Config = e.put(t, "etc/docker/daemon.json", []byte(`{"runtimes": [1]}`), 0o644)
	if _, err := Install("docker", o); err == nil || !strings.Contains(err.Error(), "runtimes") {
		t.Errorf("runtimes not an object: %v", err)
	}
	o.Config = e.put(t, "etc/docker/daemon.json", []byte(`{"debug": true,}`), 0o644)
	if _, err := Install("docker", o); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("invalid JSON: %v", err)
	}
	o.Config = filepath.Join(e.root, "etc")
	if _, err := Install("docker", o); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("config is a directory: %v", err)
	}
}

func TestInstallFailOpenHooks(t *testing.T) {
	e := newEnv(t)
	e.o.FailOpen, e.o.AllowFailOpenAnnotation, e.o.Socket = true, true, "/run/o.sock"
	apply(t, planInstall(t, "crio", e.o))
	b, err := os.ReadFile(filepath.Join(e.o.HooksDir, "ocigate-createRuntime.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"--socket",`) || !strings.Contains(string(b), `"--fail-open",`) ||
		!strings.Contains(string(b), `"--allow-fail-open-annotation",`) {
		t.Errorf("hooks.d file lacks the flags:\n%s", b)
	}
}

// A config that is a symlink (config management often does that) stays
// one: its target is edited and restored.
func TestSymlinkedConfig(t *testing.T) {
	e := newEnv(t)
	orig := fixture(t, "daemon-nvidia.json")
	target := e.put(t, "srv/managed/daemon.json", orig, 0o640)
	e.o.Config = filepath.Join(e.root, "etc/docker/daemon.json")
	if err := os.MkdirAll(filepath.Dir(e.o.Config), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, e.o.Config); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, e.root)
	apply(t, planInstall(t, "docker", e.o))
	if fi, err := os.Lstat(e.o.Config); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("install replaced the symlink: %v %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(target); !strings.Contains(string(b), "ocigate-runc") {
		t.Errorf("target not edited:\n%s", b)
	}
	apply(t, planUninstall(t, "docker", e.o))
	sameSnapshot(t, "after uninstall", before, snapshot(t, e.root))
}
