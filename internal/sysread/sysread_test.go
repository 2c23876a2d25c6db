package sysread

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
