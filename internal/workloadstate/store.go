// Package workloadstate keeps every registered workload in a file of its
// own, so that an agent restarted over pinned BPF maps knows their
// containers again. Each record is written atomically (a temporary file
// renamed into place), so a crash leaves either the old record or the
// new one; one file per cgroup keeps a registration's cost independent
// of how many workloads there are. A record is the agent's own
// (workload.Workload) in JSON, so its tags are the format: a restarted
// agent reads the records its previous version wrote (store_test.go
// pins one).
package workloadstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/ocigate/ocigate/internal/workload"
)

// DefaultDir is where the agent keeps the records; like the pins in
// bpffs it does not survive a reboot.
const DefaultDir = "/run/ocigate/workloads"

const (
	suffix    = ".json"
	tmpPrefix = ".tmp-"
)

// Store is a directory of workload records named CGROUPID.json.
type Store struct {
	dir string
}

// Open creates dir (mode 0700) when missing.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("workload state: no directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("workload state: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(cgroupID uint64) string {
	return filepath.Join(s.dir, strconv.FormatUint(cgroupID, 10)+suffix)
}

// Put writes w's record, replacing the one of its cgroup. It runs on
// the hook's path (before the agent answers), so it makes plain system
// calls: open, write, close, rename. os.CreateTemp and os.Rename cost
// six more (the poller's probe of a new file, its undoing, and a stat
// of the destination) for nothing a record needs.
func (s *Store) Put(w *workload.Workload) error {
	if w.CgroupID == 0 {
		return fmt.Errorf("workload state: container %q has no cgroup id", w.ContainerID)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("workload state: encode container %q: %w", w.ContainerID, err)
	}
	tmp, err := writeTemp(s.dir, append(b, '\n'))
	if err != nil {
		return fmt.Errorf("workload state: write record of container %q: %w", w.ContainerID, err)
	}
	if err := syscall.Rename(tmp, s.path(w.CgroupID)); err != nil {
		_ = syscall.Unlink(tmp)
		return fmt.Errorf("workload state: %w", &os.LinkError{Op: "rename", Old: tmp, New: s.path(w.CgroupID), Err: err})
	}
	return nil
}

// tmpSeq numbers this process's temporary files; with the pid it makes
// their names unique (O_EXCL checks anyway).
var tmpSeq atomic.Uint64

// writeTemp writes data to a new temporary file in dir and returns its
// path; on error nothing is left.
func writeTemp(dir string, data []byte) (string, error) {
	for {
		path := filepath.Join(dir, fmt.Sprintf("%s%d-%d", tmpPrefix, os.Getpid(), tmpSeq.Add(1)))
		fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o600)
		if errors.Is(err, syscall.EEXIST) {
			continue
		}
		if err != nil {
			return "", &os.PathError{Op: "open", Path: path, Err: err}
		}
		werr := writeAll(fd, data)
		if cerr := syscall.Close(fd); werr == nil && cerr != nil {
			werr = &os.PathError{Op: "close", Path: path, Err: cerr}
		}
		if werr != nil {
			_ = syscall.Unlink(path)
			return "", werr
		}
		return path, nil
	}
}

// writeAll writes data to fd.
func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := syscall.Write(fd, data)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return os.NewSyscallError("write", err)
		}
		data = data[n:]
	}
	return nil
}

// Remove deletes the record of a cgroup; a missing one is fine.
func (s *Store) Remove(cgroupID uint64) error {
	if err := os.Remove(s.path(cgroupID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("workload state: %w", err)
	}
	return nil
}

// Load reads every record, ordered by registration time. Records that
// cannot be read, and temporary files a crash left, are removed and
// reported in errs.
func (s *Store) Load() (ws []*workload.Workload, errs []error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("workload state: %w", err)}
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(s.dir, name)
		if strings.HasPrefix(name, tmpPrefix) {
			os.Remove(path)
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(name, suffix), 10, 64)
		if !isRecord(name) || err != nil || e.IsDir() {
			errs = append(errs, fmt.Errorf("workload state: %s is not a record; left alone", path))
			continue
		}
		w, err := read(path)
		if err == nil && w.CgroupID != id {
			err = fmt.Errorf("holds cgroup %d", w.CgroupID)
		}
		if err != nil {
			os.Remove(path)
			errs = append(errs, fmt.Errorf("workload state: record %s removed: %w", path, err))
			continue
		}
		ws = append(ws, w)
	}
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].RegisteredAt.Before(ws[j].RegisteredAt) })
	return ws, errs
}

// isRecord: the name is CGROUPID.json.
func isRecord(name string) bool {
	id, ok := strings.CutSuffix(name, suffix)
	if !ok {
		return false
	}
	_, err := strconv.ParseUint(id, 10, 64)
	return err == nil
}

func read(path string) (*workload.Workload, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var w workload.Workload
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	if w.ContainerID == "" {
		return nil, errors.New("no container id")
	}
	return &w, nil
}

// Count is the number of records.
func (s *Store) Count() (int, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("workload state: %w", err)
	}
	n := 0
	for _, e := range entries {
		if isRecord(e.Name()) {
			n++
		}
	}
	return n, nil
}

// RemoveAll deletes the records and the directory (uninstall). Files
// that are not records are left, and so is the directory then.
func RemoveAll(dir string) (removed int, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("workload state: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !isRecord(e.Name()) && !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	if err := os.Remove(dir); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("workload state: %w", errors.Join(errs...))
	}
	return removed, nil
}
