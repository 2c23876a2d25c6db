package events

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Rotation bounds an events file: when the next line would take it past
// MaxSize bytes, PATH becomes PATH.1, PATH.1 becomes PATH.2 and so on up
// to PATH.<MaxBackups>; the oldest goes.
type Rotation struct {
	MaxSize    int64 // 0: never rotate
	MaxBackups int   // backups kept; 0: the full file is removed
}

// Validate refuses negative bounds.
func (r Rotation) Validate() error {
	if r.MaxSize < 0 {
		return fmt.Errorf("rotation size %d is negative", r.MaxSize)
	}
	if r.MaxBackups < 0 {
		return fmt.Errorf("rotation backups %d is negative", r.MaxBackups)
	}
	return nil
}

// rotatingFile is an events file and its size, including what the
// Writer has buffered for it.
type rotatingFile struct {
	path     string
	rot      Rotation
	f        *os.File
	size     int64
	retryAt  int64 // after a failed rotation: the size to try again at
	removing sync.WaitGroup
	removals int // names handed out to files being removed
}

// openRotating opens path for appending, creating its directory (mode
// 0700) when missing, as on a host where nothing made /var/log/ocigate.
func openRotating(path string, rot Rotation) (*rotatingFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open events file: %w", err)
	}
	f, size, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &rotatingFile{path: path, rot: rot, f: f, size: size}, nil
}

func openAppend(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("open events file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open events file: %w", err)
	}
	return f, fi.Size(), nil
}

// within says whether the file may have to rotate within n bytes of
// whole lines: then each line must be looked at (due).
func (r *rotatingFile) within(n int64) bool {
	return r.rot.MaxSize > 0 && r.size+n > r.rot.MaxSize
}

// due says whether a line of n bytes must go to a fresh file. A file
// that holds nothing yet takes any line, however long.
func (r *rotatingFile) due(n int64) bool {
	return r.rot.MaxSize > 0 && r.size > 0 && r.size+n > r.rot.MaxSize && r.size >= r.retryAt
}

func (r *rotatingFile) backup(i int) string { return r.path + "." + strconv.Itoa(i) }

// rotate shifts the backups, moves the full file to PATH.1 (or removes
// it without backups) and opens a new PATH. The caller has flushed. On
// failure the old file stays in use, whatever its name now is.
func (r *rotatingFile) rotate() error {
	err := r.shift()
	if err == nil {
		var f *os.File
		var size int64
		if f, size, err = openAppend(r.path); err == nil {
			old := r.f
			r.f, r.size, r.retryAt = f, size, 0
			if cerr := old.Close(); cerr != nil {
				return fmt.Errorf("close rotated file: %w", cerr)
			}
			return nil
		}
	}
	r.retryAt = r.size + r.rot.MaxSize
	return err
}

func (r *rotatingFile) shift() error {
	if r.rot.MaxBackups == 0 {
		return r.remove(r.path)
	}
	if err := r.remove(r.backup(r.rot.MaxBackups)); err != nil {
		return err
	}
	for i := r.rot.MaxBackups - 1; i >= 1; i-- {
		if err := os.Rename(r.backup(i), r.backup(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(r.path, r.backup(1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// remove takes path out of the way by a rename and frees it in the
// background: freeing a file of hundreds of megabytes takes the file
// system a while (100 ms on a disk mounted with discard), and the
// events wait for nothing but renames.
func (r *rotatingFile) remove(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file: not removed", path)
	}
	r.removals++
	gone := fmt.Sprintf("%s.removing-%d-%d", r.path, os.Getpid(), r.removals)
	if err := os.Rename(path, gone); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	r.removing.Add(1)
	go func() {
		defer r.removing.Done()
		_ = os.Remove(gone) // best effort: a leftover is only disk space
	}()
	return nil
}

// close closes the file once the removals are done.
func (r *rotatingFile) close() error {
	r.removing.Wait()
	return r.f.Close()
}
