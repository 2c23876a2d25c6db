package cgroupfilter

import (
	"bufio"
	"bytes"
	"errors"
	"path/filepath"
	"strconv"

	"github.com/ocigate/ocigate/internal/errwrap"
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
		return false, errwrap.Wrap("cgroup "+cgPath, err)
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
		return false, errors.New(file + ": populated is " + strconv.Quote(string(val)) + ", want 0 or 1")
	}
	return false, errors.New(file + `: no "populated" line`)
}
