// Package testenv is the harness of ocigate's real-container end-to-end
// tests: it builds busybox root filesystems and OCI bundles, runs them with
// runc or podman, and observes what happened from outside the container.
// Its subpackages need no testing, so the vmtest suite's static binary
// shares them: peer (loopback listeners that record what they receive),
// agentlog (the agent's JSON-lines events file and log) and probe (the
// probes' socket operations).
//
// Everything here talks to the real machine (runc, podman, cgroupfs), so it
// is meant for tests that run as root and opt in explicitly.
package testenv

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BusyboxPath is the static busybox copied into every rootfs.
var BusyboxPath = "/bin/busybox"

// rootfsDirs are created (mode 0755 unless listed in rootfsModes) in every
// rootfs; mount points below them (such as /sys/fs/cgroup) are created by
// the runtime.
var rootfsDirs = []string{"bin", "sbin", "etc", "tmp", "proc", "dev", "sys", "root", "run", "var/tmp"}

var rootfsModes = map[string]os.FileMode{"tmp": 0o1777, "var/tmp": 0o1777}

const passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
const group = "root:x:0:\nnogroup:x:65534:\n"

// BuildRootfs makes dir a minimal busybox root filesystem: /bin/busybox,
// a symlink in /bin for every applet that busybox --list reports, /etc/passwd
// and /etc/group, and empty /tmp, /proc, /dev and /sys directories.
//
// extra maps a path inside the rootfs (e.g. "/probe") to a host file that is
// copied there with its permission bits; parent directories are created.
func BuildRootfs(dir string, extra map[string]string) error {
	if dir == "" {
		return fmt.Errorf("building rootfs: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("building rootfs %s: %w", dir, err)
	}
	if abs == "/" {
		return fmt.Errorf("building rootfs: refusing to use / as a rootfs")
	}
	for _, d := range rootfsDirs {
		mode, ok := rootfsModes[d]
		if !ok {
			mode = 0o755
		}
		p := filepath.Join(abs, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("building rootfs: %w", err)
		}
		// MkdirAll is subject to the umask and does not set the sticky bit.
		if err := os.Chmod(p, mode); err != nil {
			return fmt.Errorf("building rootfs: %w", err)
		}
	}
	if err := CopyFile(BusyboxPath, filepath.Join(abs, "bin/busybox")); err != nil {
		return fmt.Errorf("building rootfs: %w", err)
	}
	applets, err := busyboxApplets()
	if err != nil {
		return fmt.Errorf("building rootfs: %w", err)
	}
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		link := filepath.Join(abs, "bin", a)
		if err := os.Symlink("busybox", link); err != nil && !os.IsExist(err) {
			return fmt.Errorf("building rootfs: applet %s: %w", a, err)
		}
	}
	files := map[string]string{"etc/passwd": passwd, "etc/group": group, "etc/hostname": "ocigate-e2e\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(abs, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("building rootfs: %w", err)
		}
	}
	for inside, host := range extra {
		rel := strings.TrimLeft(filepath.Clean("/"+inside), "/")
		if rel == "" {
			return fmt.Errorf("building rootfs: bad extra path %q", inside)
		}
		dst := filepath.Join(abs, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("building rootfs: %w", err)
		}
		if err := CopyFile(host, dst); err != nil {
			return fmt.Errorf("building rootfs: extra %s: %w", inside, err)
		}
	}
	return nil
}

// busyboxApplets returns the applet names of BusyboxPath.
func busyboxApplets() ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(BusyboxPath, "--list")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w: %s", BusyboxPath, err, strings.TrimSpace(stderr.String()))
	}
	var applets []string
	for _, f := range strings.Fields(string(out)) {
		// Applet names are plain file names; skip anything that is not.
		if f == "" || strings.ContainsRune(f, '/') || f == "." || f == ".." {
			continue
		}
		applets = append(applets, f)
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s --list printed no applets", BusyboxPath)
	}
	return applets, nil
}

// CopyFile copies the regular file src to dst, keeping its permission bits.
// dst is replaced if it exists.
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("copying %s: not a regular file", src)
	}
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	// The umask may have cleared bits; set them exactly.
	if err := os.Chmod(tmp, st.Mode().Perm()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return nil
}
