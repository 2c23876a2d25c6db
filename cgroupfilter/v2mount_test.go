package cgroupfilter

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/cgroups/v3"
)

func TestV2MountFor(t *testing.T) {
	yes := func(string) (bool, error) { return true, nil }
	no := func(string) (bool, error) { return false, nil }
	fail := func(string) (bool, error) { return false, fs.ErrPermission }
	tests := []struct {
		name  string
		mode  cgroups.CGMode
		check func(string) (bool, error)
		want  string
		err   string
	}{
		{"unified", cgroups.Unified, yes, "/sys/fs/cgroup", ""},
		{"hybrid", cgroups.Hybrid, yes, "/sys/fs/cgroup/unified", ""},
		{"legacy", cgroups.Legacy, yes, "", "legacy cgroup v1 only"},
		{"unavailable", cgroups.Unavailable, yes, "", "no cgroup filesystem"},
		{"not cgroup2", cgroups.Hybrid, no, "", "/sys/fs/cgroup/unified is not a cgroup2 filesystem (host cgroup mode hybrid)"},
		{"statfs fails", cgroups.Unified, fail, "", "verifying cgroup v2 mount /sys/fs/cgroup"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var checked string
			got, err := v2MountFor(tc.mode, func(dir string) (bool, error) {
				checked = dir
				return tc.check(dir)
			})
			if tc.err != "" {
				wantErr(t, err, tc.err)
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("v2MountFor = %q, %v; want %q", got, err, tc.want)
			}
			if checked != tc.want {
				t.Errorf("statfs check ran on %q, want %q", checked, tc.want)
			}
		})
	}
	_, err := v2MountFor(cgroups.Unified, fail)
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("statfs error not wrapped: %v", err)
	}
}

func TestIsCgroup2(t *testing.T) {
	dir := t.TempDir()
	ok, err := IsCgroup2(dir)
	if err != nil || ok {
		t.Errorf("IsCgroup2(tempdir) = %v, %v; want false, nil", ok, err)
	}
	missing := filepath.Join(dir, "missing")
	_, err = IsCgroup2(missing)
	wantErr(t, err, missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
}

func TestV2MountRealHost(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		t.Skip("no /sys/fs/cgroup on this machine")
	}
	dir, err := V2Mount()
	switch mode := cgroups.Mode(); mode {
	case cgroups.Unified, cgroups.Hybrid:
		if err != nil {
			t.Fatalf("V2Mount in %s mode: %v", modeName(mode), err)
		}
	default:
		wantErr(t, err)
		t.Skipf("host has no cgroup v2 (mode %s): %v", modeName(mode), err)
	}
	ok, err := IsCgroup2(dir)
	if err != nil || !ok {
		t.Fatalf("IsCgroup2(%s) = %v, %v; want true", dir, ok, err)
	}
	r, err := Resolver{}.Root()
	if err != nil || r != dir {
		t.Errorf("Resolver{}.Root() = %q, %v; want %q", r, err, dir)
	}
	t.Logf("cgroup v2 mount: %s (mode %s)", dir, modeName(cgroups.Mode()))
}
