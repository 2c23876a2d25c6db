package cgroupfilter

import (
	"errors"
	"fmt"

	"github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"
)

// Where the cgroup v2 hierarchy lives on unified and hybrid hosts.
const (
	v2UnifiedMount = "/sys/fs/cgroup"
	v2HybridMount  = "/sys/fs/cgroup/unified"
)

// V2Mount returns where the cgroup v2 hierarchy is mounted:
// "/sys/fs/cgroup" on a unified (pure v2) host, "/sys/fs/cgroup/unified" on
// a hybrid host, and an error on a legacy (v1 only) host. The chosen
// directory is verified to be a cgroup2 filesystem with statfs.
//
// The host mode comes from cgroups.Mode(), which is computed once per process.
func V2Mount() (string, error) {
	return v2MountFor(cgroups.Mode(), IsCgroup2)
}

// v2MountFor is V2Mount with the mode and the statfs check injected, so every
// branch can be tested on any host.
func v2MountFor(mode cgroups.CGMode, isCgroup2 func(string) (bool, error)) (string, error) {
	var dir string
	switch mode {
	case cgroups.Unified:
		dir = v2UnifiedMount
	case cgroups.Hybrid:
		dir = v2HybridMount
	case cgroups.Legacy:
		return "", errors.New("cgroup v2 is not mounted: host uses legacy cgroup v1 only " +
			"(mount cgroup2 at " + v2HybridMount + " or boot with systemd.unified_cgroup_hierarchy=1)")
	default:
		return "", fmt.Errorf("no cgroup filesystem found at %s", v2UnifiedMount)
	}
	ok, err := isCgroup2(dir)
	if err != nil {
		return "", fmt.Errorf("verifying cgroup v2 mount %s: %w", dir, err)
	}
	if !ok {
		return "", fmt.Errorf("%s is not a cgroup2 filesystem (host cgroup mode %s)", dir, modeName(mode))
	}
	return dir, nil
}

// IsCgroup2 reports whether dir is a cgroup2 mount, i.e. whether statfs
// reports CGROUP2_SUPER_MAGIC for it. (Any directory inside a cgroup2 mount
// reports the same magic.)
func IsCgroup2(dir string) (bool, error) {
	var st unix.Statfs_t
	for {
		err := unix.Statfs(dir, &st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("statfs %s: %w", dir, err)
		}
		return st.Type == unix.CGROUP2_SUPER_MAGIC, nil
	}
}

func modeName(m cgroups.CGMode) string {
	switch m {
	case cgroups.Unified:
		return "unified"
	case cgroups.Hybrid:
		return "hybrid"
	case cgroups.Legacy:
		return "legacy"
	default:
		return "unavailable"
	}
}
