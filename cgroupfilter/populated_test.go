package cgroupfilter

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPopulated(t *testing.T) {
	root := t.TempDir()
	r := Resolver{CgroupRoot: root}
	write := func(path, content string) {
		t.Helper()
		dir := filepath.Join(root, path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("/busy", "populated 1\nfrozen 0\n")
	write("/empty", "populated 0\nfrozen 0\n")
	write("/odd", "populated 2\n")
	write("/none", "frozen 0\n")
	if p, err := r.Populated("/busy"); err != nil || !p {
		t.Errorf("busy: %v, %v", p, err)
	}
	if p, err := r.Populated("/empty"); err != nil || p {
		t.Errorf("empty: %v, %v", p, err)
	}
	if _, err := r.Populated("/odd"); err == nil || !strings.Contains(err.Error(), `populated is "2"`) {
		t.Errorf("odd: %v", err)
	}
	if _, err := r.Populated("/none"); err == nil || !strings.Contains(err.Error(), `no "populated" line`) {
		t.Errorf("none: %v", err)
	}
	if _, err := r.Populated("/gone"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "cgroup /gone") {
		t.Errorf("gone: %v", err)
	}
	if _, err := r.Populated("relative"); err == nil {
		t.Error("relative path accepted")
	}
}

func TestPopulatedRealCgroup(t *testing.T) {
	r := Resolver{}
	path, err := r.CgroupPath(os.Getpid())
	if err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	p, err := r.Populated(path)
	if err != nil {
		t.Skipf("cgroup.events unreadable: %v", err)
	}
	if !p {
		t.Errorf("our own cgroup %s says it has no process", path)
	}
}
