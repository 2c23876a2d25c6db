package sysread

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, chunk - 1, chunk, chunk + 1, 5000} {
		want := bytes.Repeat([]byte("x"), size)
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(path, 5000)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("size %d: got %d bytes, %v", size, len(got), err)
		}
		if size > 0 {
			if _, err := ReadFile(path, size-1); err == nil || !strings.Contains(err.Error(), "larger than") {
				t.Errorf("size %d, limit %d: got %v, want larger than", size, size-1, err)
			}
		}
	}
	// A file of /proc reports no size: it is read to its end.
	got, err := ReadFile("/proc/self/status", 1<<16)
	if err != nil || !bytes.HasPrefix(got, []byte("Name:")) || !bytes.Contains(got, []byte("\nPid:")) {
		t.Fatalf("/proc/self/status: %q, %v", got, err)
	}
	_, err = ReadFile(filepath.Join(dir, "missing"), 10)
	var pe *os.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "open" {
		t.Fatalf("missing file: got %v, want a *PathError that is fs.ErrNotExist", err)
	}
}

func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	for _, size := range []int{0, 1, chunk, 5000} {
		want := bytes.Repeat([]byte("y"), size)
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadRegular(path, 5000)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("size %d: got %d bytes, %v", size, len(got), err)
		}
	}
	var tl *TooLargeError
	if _, err := ReadRegular(path, 4999); !errors.As(err, &tl) || tl.Size != 5000 ||
		err.Error() != path+" exceeds 4999 bytes (size 5000)" {
		t.Errorf("limit 4999: got %v, want a TooLargeError of size 5000", err)
	}
	if _, err := ReadRegular(filepath.Join(dir, "missing"), 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want fs.ErrNotExist", err)
	}
}

// A FIFO (nobody writes to it) or a directory is refused at once, by its
// type, without a read that would block.
func TestReadRegularRefusesOtherTypes(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]fs.FileMode{fifo: fs.ModeNamedPipe, dir: fs.ModeDir} {
		_, err := ReadRegular(path, 1<<20)
		var nr *NotRegularError
		if !errors.As(err, &nr) || nr.Mode != mode || !strings.Contains(err.Error(), "is not a regular file (mode "+mode.String()+")") {
			t.Errorf("%s: got %v, want a NotRegularError of mode %v", path, err, mode)
		}
	}
}
