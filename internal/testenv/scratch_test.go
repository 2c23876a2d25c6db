package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestScratch(t *testing.T) {
	if os.Getenv("SCRATCH") == "" {
		t.Skip()
	}
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	if err := BuildRootfs(filepath.Join(bundle, "rootfs"), nil); err != nil {
		t.Fatal(err)
	}
	b := Bundle{
		Args:            []string{"/bin/sh", "-c", os.Getenv("SCRATCH")},
		HostNetwork:     true,
		CgroupNamespace: os.Getenv("CGNS") != "",
		CgroupsPath:     "/ocigate-scratch/x1",
		Mounts: []specs.Mount{{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup2",
			Options: []string{"nosuid", "noexec", "nodev", "rw"}}},
	}
	if err := WriteBundle(bundle, b); err != nil {
		t.Fatal(err)
	}
	defer RemoveCgroup("/ocigate-scratch")
	out, serr, code, err := RunRunc(context.Background(), bundle, "scratch1", 20*time.Second)
	t.Logf("out=%s\nstderr=%s\ncode=%d err=%v", out, serr, code, err)
}
