package cgroupfilter

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"
)

// The magic statfs reports for cgroup2 is the kernel's.
func TestCgroup2SuperMagic(t *testing.T) {
	if cgroup2SuperMagic != unix.CGROUP2_SUPER_MAGIC {
		t.Fatalf("cgroup2SuperMagic %#x, unix.CGROUP2_SUPER_MAGIC %#x", cgroup2SuperMagic, unix.CGROUP2_SUPER_MAGIC)
	}
}

func TestV2MountFor(t *testing.T) {
	yes := func(string) (bool, error) { return true, nil }
	no := func(string) (bool, error) { return false, nil }
	fail := func(string) (bool, error) { return false, fs.ErrPermission }
	tests := []struct {
		name  string
		mode  cgMode
		check func(string) (bool, error)
		want  string
		err   string
	}{
		{"unified", modeUnified, yes, "/sys/fs/cgroup", ""},
		{"hybrid", modeHybrid, yes, "/sys/fs/cgroup/unified", ""},
		{"legacy", modeLegacy, yes, "", "legacy cgroup v1 only"},
		{"unavailable", modeUnavailable, yes, "", "no cgroup filesystem"},
		{"not cgroup2", modeHybrid, no, "", "/sys/fs/cgroup/unified is not a cgroup2 filesystem (host cgroup mode hybrid)"},
		{"statfs fails", modeUnified, fail, "", "verifying cgroup v2 mount /sys/fs/cgroup"},
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
	_, err := v2MountFor(modeUnified, fail)
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
	switch mode := hostMode(); mode {
	case modeUnified, modeHybrid:
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
	t.Logf("cgroup v2 mount: %s (mode %s)", dir, modeName(hostMode()))
}

// hostMode reads the layout as containerd's cgroups.Mode does, which
// the hook no longer links.
func TestHostModeAgreesWithContainerd(t *testing.T) {
	want := map[cgroups.CGMode]cgMode{cgroups.Unavailable: modeUnavailable, cgroups.Legacy: modeLegacy,
		cgroups.Hybrid: modeHybrid, cgroups.Unified: modeUnified}[cgroups.Mode()]
	if got := hostMode(); got != want {
		t.Fatalf("hostMode() = %s, containerd's cgroups.Mode() = %s", modeName(got), modeName(want))
	}
	t.Logf("host cgroup mode: %s", modeName(want))
}
