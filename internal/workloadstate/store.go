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

// Put writes w's record, replacing the one of its cgroup.
func (s *Store) Put(w *workload.Workload) error {
	if w.CgroupID == 0 {
		return fmt.Errorf("workload state: container %q has no cgroup id", w.ContainerID)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("workload state: encode container %q: %w", w.ContainerID, err)
	}
	f, err := os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("workload state: %w", err)
	}
	_, werr := f.Write(append(b, '\n'))
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("workload state: write record of container %q: %w", w.ContainerID, err)
	}
	if err := os.Rename(f.Name(), s.path(w.CgroupID)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("workload state: %w", err)
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
