package testenv

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hostRootLinks are the top-level symlinks of a merged-/usr host (Debian
// 12): the host root has the same ones.
var hostRootLinks = map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}

// hostRootDirs are the (empty) directories of a host root: mount points
// and the home directory.
var hostRootDirs = []string{"usr", "etc", "tmp", "proc", "dev", "sys", "root", "run", "var/tmp"}

// BuildHostRoot makes dir a root filesystem that runs the host's own
// programs (bash, python3, perl, openssl, socat, ncat ...) without copying
// them: empty mount points for the host's /usr and /etc, which
// HostRootMounts binds read-only, and the merged-/usr symlinks bin, sbin,
// lib and lib64. The host's / itself cannot be a container's rootfs.
//
// It needs a merged-/usr host: every program and library below /usr.
func BuildHostRoot(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("building host root %s: %w", dir, err)
	}
	if abs == "/" {
		return fmt.Errorf("building host root: refusing to use / as a rootfs")
	}
	for name, target := range hostRootLinks {
		if got, err := os.Readlink("/" + name); err != nil || filepath.Clean(got) != target {
			return fmt.Errorf("building host root: the host's /%s is not a symlink to %s (not a merged-/usr host): %v %q", name, target, err, got)
		}
	}
	for _, d := range hostRootDirs {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return fmt.Errorf("building host root: %w", err)
		}
	}
	for name, target := range hostRootLinks {
		link := filepath.Join(abs, name)
		if got, err := os.Readlink(link); err == nil && got == target {
			continue
		}
		if err := os.Symlink(target, link); err != nil {
			return fmt.Errorf("building host root: %w", err)
		}
	}
	return nil
}

// HostRootMounts are the mounts a bundle on a BuildHostRoot rootfs adds to
// the defaults: the host's /usr and /etc bound read-only (and nosuid,
// nodev), and a writable tmpfs on /tmp (for mkfifo and the like).
func HostRootMounts() []specs.Mount {
	ro := []string{"rbind", "ro", "nosuid", "nodev"}
	return []specs.Mount{
		{Destination: "/usr", Type: "bind", Source: "/usr", Options: ro},
		{Destination: "/etc", Type: "bind", Source: "/etc", Options: ro},
		{
			Destination: "/tmp", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "mode=1777", "size=65536k"},
		},
	}
}
