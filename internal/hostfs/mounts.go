// Package hostfs makes sure the pseudo file systems the agent needs are
// mounted, as a node agent must on hosts that do not mount them at boot.
package hostfs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Default mount points.
const (
	BPFFS      = "/sys/fs/bpf"
	Tracefs    = "/sys/kernel/tracing"
	Securityfs = "/sys/kernel/security"
)

// Mount describes one pseudo file system.
type Mount struct {
	Path   string
	FSType string
	Magic  int64
	// Optional: the agent works without it (securityfs only tells whether
	// BPF LSM is active).
	Optional bool
}

// Needed lists what the agent mounts when missing.
var Needed = []Mount{
	{Path: BPFFS, FSType: "bpf", Magic: unix.BPF_FS_MAGIC},
	{Path: Tracefs, FSType: "tracefs", Magic: unix.TRACEFS_MAGIC},
	{Path: Securityfs, FSType: "securityfs", Magic: unix.SECURITYFS_MAGIC, Optional: true},
}

// Ensure mounts m unless it is already there. It reports whether it
// mounted.
func Ensure(m Mount) (bool, error) {
	var st unix.Statfs_t
	err := unix.Statfs(m.Path, &st)
	if err == nil && int64(st.Type) == m.Magic {
		return false, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("statfs %s: %w", m.Path, err)
	}
	if err := os.MkdirAll(m.Path, 0o700); err != nil {
		return false, fmt.Errorf("create %s mount point %s: %w", m.FSType, m.Path, err)
	}
	if err := unix.Mount(m.FSType, m.Path, m.FSType, 0, ""); err != nil {
		return false, fmt.Errorf("mount %s at %s: %w", m.FSType, m.Path, err)
	}
	return true, nil
}

// Result says what EnsureAll did with one file system.
type Result struct {
	Mount
	Mounted bool  // it was missing and is mounted now
	Err     error // an optional one that could not be mounted
}

// EnsureAll mounts every file system of Needed that is missing. A
// required one that fails is an error; an optional one is reported in
// its Result.
func EnsureAll() ([]Result, error) {
	var out []Result
	for _, m := range Needed {
		mounted, err := Ensure(m)
		if err != nil && !m.Optional {
			return out, err
		}
		out = append(out, Result{Mount: m, Mounted: mounted, Err: err})
	}
	return out, nil
}
