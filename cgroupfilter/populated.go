package cgroupfilter

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/ocigate/ocigate/internal/sysread"
)

// Populated reports whether any process lives in the cgroup at cgPath or
// below it, from the "populated" key of its cgroup.events file (cgroup v2,
// kept by the kernel). Errors name the file; a missing file wraps
// fs.ErrNotExist.
func (r Resolver) Populated(cgPath string) (bool, error) {
	if err := validateCgroupPath(cgPath); err != nil {
		return false, err
	}
	root, err := r.Root()
	if err != nil {
		return false, err
	}
	file := filepath.Join(root, filepath.FromSlash(cgPath), "cgroup.events")
	data, err := sysread.ReadFile(file, 4096)
	if err != nil {
		return false, fmt.Errorf("cgroup %s: %w", cgPath, err)
	}
	return parsePopulated(file, data)
}

func parsePopulated(file string, data []byte) (bool, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, _ := bytes.Cut(sc.Bytes(), []byte(" "))
		if string(key) != "populated" {
			continue
		}
		switch string(val) {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
		return false, fmt.Errorf("%s: populated is %q, want 0 or 1", file, val)
	}
	return false, fmt.Errorf("%s: no \"populated\" line", file)
}
