// Package preflight checks what a host offers ocigate before install:
// kernel version, BTF, cgroup v2, bpffs, tracefs, the LSM list and
// lockdown. `ocigate-agentd check` adds what the agent would choose per
// enforcement point and the runtimes found.
package preflight

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"
)

// Levels of a finding.
const (
	OK   = "ok"
	Warn = "warn" // ocigate works, with less
	Fail = "fail" // ocigate cannot protect containers here
)

// Finding is one check's result.
type Finding struct {
	Check  string `json:"check"`
	Level  string `json:"level"`
	Value  string `json:"value"`
	Detail string `json:"detail,omitempty"`
}

// Host is where the checks look: "/" on a real host, a fake tree in
// tests.
type Host struct {
	Root string
	// Release is the kernel release (uname -r); "" reads it.
	Release string
	// CgroupMode is the cgroup setup; 0 detects it.
	CgroupMode cgroups.CGMode
	// Statfs returns a path's file system magic; nil uses statfs(2).
	Statfs func(path string) (int64, error)
}

// MinKernel is the oldest kernel the programs load on: they call
// bpf_loop (5.17).
var MinKernel = [2]int{5, 17}

// Check runs every host check, in the order the README lists them.
func (h Host) Check() []Finding {
	return []Finding{h.kernel(), h.btf(), h.cgroup(), h.fs("bpffs", "/sys/fs/bpf", unix.BPF_FS_MAGIC),
		h.fs("tracefs", "/sys/kernel/tracing", unix.TRACEFS_MAGIC), h.lsm(), h.lockdown()}
}

// path returns p under h.Root.
func (h Host) path(p string) string { return filepath.Join(h.Root, p) }

// kernel checks the release against MinKernel.
func (h Host) kernel() Finding {
	rel := h.Release
	if rel == "" {
		var u unix.Utsname
		if err := unix.Uname(&u); err == nil {
			rel = unix.ByteSliceToString(u.Release[:])
		}
	}
	f := Finding{Check: "kernel", Value: rel, Level: OK}
	maj, min, ok := ParseRelease(rel)
	switch {
	case !ok:
		f.Level, f.Detail = Warn, "release not understood; the programs need 5.17 or later"
	case maj < MinKernel[0] || maj == MinKernel[0] && min < MinKernel[1]:
		f.Level, f.Detail = Fail, "the programs need 5.17 or later (bpf_loop)"
	case maj < 6 || maj == 6 && min < 3:
		f.Level, f.Detail = Warn, "TCP sends are seen on the fallback backend from 6.3 on"
	}
	return f
}

// ParseRelease reads the major and minor version of a kernel release.
func ParseRelease(rel string) (major, minor int, ok bool) {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	maj, err1 := strconv.Atoi(parts[0])
	digits := parts[1]
	if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = digits[:i]
	}
	min, err2 := strconv.Atoi(digits)
	return maj, min, err1 == nil && err2 == nil
}

// btf checks /sys/kernel/btf/vmlinux.
func (h Host) btf() Finding {
	f := Finding{Check: "btf", Value: "/sys/kernel/btf/vmlinux", Level: OK}
	if _, err := os.Stat(h.path("/sys/kernel/btf/vmlinux")); err != nil {
		f.Level, f.Value, f.Detail = Fail, "missing", "the programs' CO-RE relocations need CONFIG_DEBUG_INFO_BTF"
	}
	return f
}

// cgroup checks for a cgroup v2 hierarchy, pure or hybrid.
func (h Host) cgroup() Finding {
	mode := h.CgroupMode
	if mode == 0 {
		mode = cgroups.Mode()
	}
	f := Finding{Check: "cgroup v2", Level: OK}
	switch mode {
	case cgroups.Unified:
		f.Value = "pure (unified) at /sys/fs/cgroup"
	case cgroups.Hybrid:
		f.Value = "hybrid: v2 at /sys/fs/cgroup/unified"
		f.Detail = "podman needs --runtime runc and --cgroup-manager cgroupfs here"
	case cgroups.Legacy:
		f.Level, f.Value = Fail, "legacy v1 only"
		f.Detail = "containers are keyed by their v2 cgroup: boot with systemd.unified_cgroup_hierarchy=1"
	default:
		f.Level, f.Value = Fail, "none"
	}
	return f
}

// fs checks that a pseudo file system is mounted at p; the agent mounts
// one that is missing.
func (h Host) fs(name, p string, magic int64) Finding {
	f := Finding{Check: name, Value: "mounted at " + p, Level: OK}
	statfs := h.Statfs
	if statfs == nil {
		statfs = func(p string) (int64, error) {
			var st unix.Statfs_t
			err := unix.Statfs(p, &st)
			return int64(st.Type), err
		}
	}
	if got, err := statfs(h.path(p)); err != nil || got != magic {
		f.Level, f.Value, f.Detail = Warn, "not mounted at "+p, "the agent mounts it at start"
	}
	return f
}

// lsm reads the active LSMs: BPF LSM needs `bpf` among them.
func (h Host) lsm() Finding {
	b, err := os.ReadFile(h.path("/sys/kernel/security/lsm"))
	if err != nil {
		return Finding{Check: "lsm", Level: Warn, Value: "unknown", Detail: "securityfs unreadable: " + errors.Unwrap(err).Error()}
	}
	list := strings.TrimSpace(string(b))
	f := Finding{Check: "lsm", Level: OK, Value: list}
	if !strings.Contains(","+list+",", ",bpf,") {
		f.Level, f.Detail = Warn, "bpf is not active (boot with lsm=...,bpf): no point can use the BPF LSM backend"
	}
	return f
}

// lockdown reads the lockdown mode: confidentiality forbids the BPF
// programs' reads of kernel memory.
func (h Host) lockdown() Finding {
	b, err := os.ReadFile(h.path("/sys/kernel/security/lockdown"))
	if err != nil {
		return Finding{Check: "lockdown", Level: OK, Value: "none (no lockdown LSM)"}
	}
	mode := LockdownMode(string(b))
	f := Finding{Check: "lockdown", Level: OK, Value: mode}
	if mode == "confidentiality" {
		f.Level, f.Detail = Fail, "lockdown=confidentiality forbids the BPF programs' reads of kernel memory"
	}
	return f
}

// LockdownMode returns the selected mode of a lockdown file's text
// ("none [integrity] confidentiality" → integrity).
func LockdownMode(text string) string {
	for _, w := range strings.Fields(text) {
		if strings.HasPrefix(w, "[") && strings.HasSuffix(w, "]") {
			return strings.Trim(w, "[]")
		}
	}
	return strings.TrimSpace(text)
}

// Failed reports whether any finding fails.
func Failed(fs []Finding) bool {
	for _, f := range fs {
		if f.Level == Fail {
			return true
		}
	}
	return false
}

// String is a finding as one line.
func (f Finding) String() string {
	s := fmt.Sprintf("%-5s %-10s %s", strings.ToUpper(f.Level), f.Check, f.Value)
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	return s
}
