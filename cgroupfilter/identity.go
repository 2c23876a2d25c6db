// Package cgroupfilter resolves which cgroup v2 and namespaces a process
// belongs to, so per-container eBPF policy can be keyed by cgroup ID.
package cgroupfilter

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/ocigate/ocigate/internal/errwrap"
	"github.com/ocigate/ocigate/internal/sysread"
)

const defaultProcRoot = "/proc"

// NamespaceIDs are the inode numbers of a process's namespaces.
type NamespaceIDs struct {
	Mnt    uint64 `json:"mnt"`
	Pid    uint64 `json:"pid"`
	Net    uint64 `json:"net"`
	Uts    uint64 `json:"uts"`
	Ipc    uint64 `json:"ipc"`
	Cgroup uint64 `json:"cgroup"`
	User   uint64 `json:"user"`
	Time   uint64 `json:"time"` // 0 when the kernel has no time namespaces
}

// Identity is where a process lives.
type Identity struct {
	// CgroupID is the inode number of the cgroup v2 directory, which is what
	// bpf_get_current_cgroup_id() returns for tasks in that cgroup.
	CgroupID uint64 `json:"cgroup_id"`
	// CgroupPath is relative to the v2 mount and starts with "/".
	CgroupPath string       `json:"cgroup_path"`
	Namespaces NamespaceIDs `json:"namespaces"`
}

// Resolver resolves identities; zero values mean the real host paths.
type Resolver struct {
	ProcRoot   string // default "/proc"
	CgroupRoot string // default: V2Mount()
}

// Resolve returns the cgroup v2 path and ID and the namespace IDs of pid.
func (r Resolver) Resolve(pid int) (Identity, error) {
	cgPath, err := r.CgroupPath(pid)
	if err != nil {
		return Identity{}, err
	}
	id, err := r.CgroupID(cgPath)
	if err != nil {
		return Identity{}, errwrap.Wrap("process "+strconv.Itoa(pid), err)
	}
	ns, err := r.Namespaces(pid)
	if err != nil {
		return Identity{}, err
	}
	return Identity{CgroupID: id, CgroupPath: cgPath, Namespaces: ns}, nil
}

// CgroupPath returns the cgroup v2 path of pid (the "0::" line of
// /proc/<pid>/cgroup), relative to the v2 mount.
//
// The path is as seen from the caller's cgroup namespace; a path containing
// ".." (target outside the caller's cgroup namespace) is rejected, as is a
// cgroup that has been removed (" (deleted)" suffix).
func (r Resolver) CgroupPath(pid int) (string, error) {
	if err := checkPID(pid); err != nil {
		return "", err
	}
	file := filepath.Join(r.procDir(pid), "cgroup")
	data, err := sysread.ReadFile(file, 1<<16)
	if err != nil {
		return "", r.procErr(pid, err)
	}
	p, err := parseV2CgroupPath(string(data))
	if err != nil {
		return "", errwrap.Wrap("process "+strconv.Itoa(pid)+": "+file, err)
	}
	return p, nil
}

// CgroupID returns the cgroup ID (directory inode number) of the cgroup at
// cgPath, which is relative to Root() and must start with "/".
func (r Resolver) CgroupID(cgPath string) (uint64, error) {
	if err := validateCgroupPath(cgPath); err != nil {
		return 0, err
	}
	root, err := r.Root()
	if err != nil {
		return 0, err
	}
	full := filepath.Join(root, filepath.FromSlash(cgPath))
	fi, err := os.Stat(full)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, errwrap.Wrap("cgroup directory "+full+" does not exist (cgroup removed or wrong cgroup root?)", err)
		}
		return 0, errwrap.Wrap("cgroup directory "+full, err)
	}
	if !fi.IsDir() {
		return 0, errors.New("cgroup path " + full + " is not a directory")
	}
	return inodeOf(fi, full)
}

// nsFiles lists the /proc/<pid>/ns entries in NamespaceIDs field order;
// optional entries may be missing (value 0).
var nsFiles = [...]struct {
	name     string
	optional bool
}{
	{"mnt", false}, {"pid", false}, {"net", false}, {"uts", false},
	{"ipc", false}, {"cgroup", false}, {"user", false}, {"time", true},
}

// Namespaces returns the namespace inode numbers of pid, from stat() of
// /proc/<pid>/ns/*. A missing "time" entry (kernel < 5.6) yields 0; any other
// missing entry is an error.
func (r Resolver) Namespaces(pid int) (NamespaceIDs, error) {
	if err := checkPID(pid); err != nil {
		return NamespaceIDs{}, err
	}
	var ids NamespaceIDs
	dst := [...]*uint64{&ids.Mnt, &ids.Pid, &ids.Net, &ids.Uts, &ids.Ipc, &ids.Cgroup, &ids.User, &ids.Time}
	dir := filepath.Join(r.procDir(pid), "ns")
	for i, ns := range nsFiles {
		file := filepath.Join(dir, ns.name)
		fi, err := os.Stat(file)
		if err != nil {
			if ns.optional && errors.Is(err, fs.ErrNotExist) && r.procExists(pid) {
				continue
			}
			return NamespaceIDs{}, r.procErr(pid, err)
		}
		ino, err := inodeOf(fi, file)
		if err != nil {
			return NamespaceIDs{}, errwrap.Wrap("process "+strconv.Itoa(pid), err)
		}
		*dst[i] = ino
	}
	return ids, nil
}

// Root returns CgroupRoot, or V2Mount() when it is empty.
func (r Resolver) Root() (string, error) {
	if r.CgroupRoot != "" {
		return r.CgroupRoot, nil
	}
	root, err := V2Mount()
	if err != nil {
		return "", errwrap.Wrap("locating cgroup v2 root", err)
	}
	return root, nil
}

func (r Resolver) procDir(pid int) string {
	root := r.ProcRoot
	if root == "" {
		root = defaultProcRoot
	}
	return filepath.Join(root, strconv.Itoa(pid))
}

func (r Resolver) procExists(pid int) bool {
	_, err := os.Stat(r.procDir(pid))
	return err == nil
}

// procErr wraps an error from reading a /proc/<pid> entry (err names the
// file), telling an exited process apart from a missing entry.
func (r Resolver) procErr(pid int, err error) error {
	if errors.Is(err, syscall.ESRCH) ||
		(errors.Is(err, fs.ErrNotExist) && !r.procExists(pid)) {
		return errwrap.Wrap("process "+strconv.Itoa(pid)+" is gone", err)
	}
	return errwrap.Wrap("process "+strconv.Itoa(pid), err)
}

func checkPID(pid int) error {
	if pid <= 0 {
		return errors.New("invalid pid " + strconv.Itoa(pid) + ": must be > 0")
	}
	return nil
}

// parseV2CgroupPath returns the path of the "0::<path>" line of a
// /proc/<pid>/cgroup file, skipping cgroup v1 lines ("4:memory:/x").
func parseV2CgroupPath(data string) (string, error) {
	for line := range strings.SplitSeq(data, "\n") {
		if line == "" {
			continue
		}
		hierarchy, rest, ok1 := strings.Cut(line, ":")
		controllers, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return "", errors.New("malformed line " + strconv.Quote(line))
		}
		if hierarchy != "0" || controllers != "" {
			continue // cgroup v1 hierarchy
		}
		if err := validateCgroupPath(p); err != nil {
			return "", err
		}
		return p, nil
	}
	return "", errors.New("no cgroup v2 entry (0::) found; is cgroup2 mounted on this host?")
}

// validateCgroupPath checks that p is a clean absolute cgroup v2 path.
func validateCgroupPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty cgroup v2 path")
	case strings.HasSuffix(p, " (deleted)"):
		return errors.New("cgroup " + strconv.Quote(strings.TrimSuffix(p, " (deleted)")) + " has been removed")
	case !strings.HasPrefix(p, "/"):
		return errors.New("cgroup v2 path " + strconv.Quote(p) + " is not absolute")
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == ".." {
			return errors.New("cgroup v2 path " + strconv.Quote(p) + ` contains "..": the cgroup is outside ` +
				"this process's cgroup namespace (run in the host cgroup namespace)")
		}
	}
	if path.Clean(p) != p {
		return errors.New("cgroup v2 path " + strconv.Quote(p) + " is not clean")
	}
	return nil
}

func inodeOf(fi fs.FileInfo, name string) (uint64, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, errors.New("stat " + name + ": no inode number available")
	}
	return uint64(st.Ino), nil
}
