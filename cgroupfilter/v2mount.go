package cgroupfilter

import (
	"errors"
	"sync"
	"syscall"

	"github.com/ocigate/ocigate/internal/errwrap"
)

// Where the cgroup v2 hierarchy lives on unified and hybrid hosts.
const (
	v2UnifiedMount = "/sys/fs/cgroup"
	v2HybridMount  = "/sys/fs/cgroup/unified"
)

// cgroup2SuperMagic is the f_type statfs reports for a cgroup2 mount
// (CGROUP2_SUPER_MAGIC, linux/magic.h): the syscall package lacks it,
// and golang.org/x/sys/unix costs the hook its initialisation.
const cgroup2SuperMagic = 0x63677270

// V2Mount returns where the cgroup v2 hierarchy is mounted:
// "/sys/fs/cgroup" on a unified (pure v2) host, "/sys/fs/cgroup/unified" on
// a hybrid host, and an error on a legacy (v1 only) host. The chosen
// directory is verified to be a cgroup2 filesystem with statfs.
//
// The host mode comes from hostMode(), which is computed once per process.
func V2Mount() (string, error) {
	return v2MountFor(hostMode(), IsCgroup2)
}

// cgMode is the host's cgroup layout, as containerd's cgroups.Mode
// names it.
type cgMode int

// The host cgroup layouts.
const (
	modeUnavailable cgMode = iota // no cgroup filesystem at /sys/fs/cgroup
	modeLegacy                    // v1 only
	modeHybrid                    // v1, with v2 at /sys/fs/cgroup/unified
	modeUnified                   // v2 only
)

// hostMode is the host's cgroup layout, read once per process the way
// containerd's cgroups.Mode reads it (TestHostModeAgreesWithContainerd):
// /sys/fs/cgroup a cgroup2 mount is unified; otherwise a cgroup2 mount at
// /sys/fs/cgroup/unified is hybrid, and none is legacy. Reading it here
// keeps containerd's package (and its dependencies) out of the hook.
var hostMode = sync.OnceValue(func() cgMode {
	var st syscall.Statfs_t
	if err := syscall.Statfs(v2UnifiedMount, &st); err != nil {
		return modeUnavailable
	}
	if st.Type == cgroup2SuperMagic {
		return modeUnified
	}
	if err := syscall.Statfs(v2HybridMount, &st); err == nil && st.Type == cgroup2SuperMagic {
		return modeHybrid
	}
	return modeLegacy
})

// v2MountFor is V2Mount with the mode and the statfs check injected, so every
// branch can be tested on any host.
func v2MountFor(mode cgMode, isCgroup2 func(string) (bool, error)) (string, error) {
	var dir string
	switch mode {
	case modeUnified:
		dir = v2UnifiedMount
	case modeHybrid:
		dir = v2HybridMount
	case modeLegacy:
		return "", errors.New("cgroup v2 is not mounted: host uses legacy cgroup v1 only " +
			"(mount cgroup2 at " + v2HybridMount + " or boot with systemd.unified_cgroup_hierarchy=1)")
	default:
		return "", errors.New("no cgroup filesystem found at " + v2UnifiedMount)
	}
	ok, err := isCgroup2(dir)
	if err != nil {
		return "", errwrap.Wrap("verifying cgroup v2 mount "+dir, err)
	}
	if !ok {
		return "", errors.New(dir + " is not a cgroup2 filesystem (host cgroup mode " + modeName(mode) + ")")
	}
	return dir, nil
}

// IsCgroup2 reports whether dir is a cgroup2 mount, i.e. whether statfs
// reports CGROUP2_SUPER_MAGIC for it. (Any directory inside a cgroup2 mount
// reports the same magic.)
func IsCgroup2(dir string) (bool, error) {
	var st syscall.Statfs_t
	for {
		err := syscall.Statfs(dir, &st)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return false, errwrap.Wrap("statfs "+dir, err)
		}
		return st.Type == cgroup2SuperMagic, nil
	}
}

func modeName(m cgMode) string {
	switch m {
	case modeUnified:
		return "unified"
	case modeHybrid:
		return "hybrid"
	case modeLegacy:
		return "legacy"
	default:
		return "unavailable"
	}
}
