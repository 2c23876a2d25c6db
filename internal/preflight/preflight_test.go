package preflight

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"
)

// fakeHost is a tree with the files a host check reads.
func fakeHost(t *testing.T, files map[string]string) Host {
	t.Helper()
	root := t.TempDir()
	for p, body := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Host{Root: root, Release: "6.12.0-27-amd64", CgroupMode: cgroups.Unified,
		Statfs: func(p string) (int64, error) {
			if filepath.Base(p) == "bpf" {
				return unix.BPF_FS_MAGIC, nil
			}
			return 0, os.ErrNotExist
		}}
}

// levels maps each check to its level.
func levels(fs []Finding) map[string]string {
	out := map[string]string{}
	for _, f := range fs {
		out[f.Check] = f.Level
	}
	return out
}

// A good host passes; each missing requirement fails or warns as the
// README says.
func TestHostCheck(t *testing.T) {
	good := map[string]string{"sys/kernel/btf/vmlinux": "x", "sys/kernel/security/lsm": "lockdown,capability,bpf\n",
		"sys/kernel/security/lockdown": "none [integrity] confidentiality\n"}
	h := fakeHost(t, good)
	got := levels(h.Check())
	want := map[string]string{"kernel": OK, "btf": OK, "cgroup v2": OK, "bpffs": OK, "tracefs": Warn, "lsm": OK, "lockdown": OK}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
	if Failed(h.Check()) {
		t.Error("a good host fails")
	}
	bad := fakeHost(t, map[string]string{"sys/kernel/security/lsm": "capability\n", "sys/kernel/security/lockdown": "none integrity [confidentiality]\n"})
	bad.Release, bad.CgroupMode = "5.10.0-30-amd64", cgroups.Legacy
	got = levels(bad.Check())
	want = map[string]string{"kernel": Fail, "btf": Fail, "cgroup v2": Fail, "lsm": Warn, "lockdown": Fail}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("bad host %s: %s, want %s", k, got[k], v)
		}
	}
	if !Failed(bad.Check()) {
		t.Error("a bad host passes")
	}
}

func TestParseRelease(t *testing.T) {
	for rel, want := range map[string][2]int{"6.18.44-fc-v1252": {6, 18}, "5.17.0": {5, 17}, "6.1.0-27-amd64": {6, 1}, "6.12rc1": {6, 12}} {
		maj, min, ok := ParseRelease(rel)
		if !ok || maj != want[0] || min != want[1] {
			t.Errorf("%s: %d.%d %v", rel, maj, min, ok)
		}
	}
	if _, _, ok := ParseRelease("weird"); ok {
		t.Error("weird parsed")
	}
}
