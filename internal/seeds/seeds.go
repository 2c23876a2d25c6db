// Package seeds holds the seven seed TracingPolicies (01-…07-*.yaml), byte
// for byte as the seed documents give them. They are acceptance data: the
// policy parser's, the compiler's and the catalog's unit tests load them,
// and the end-to-end agents run on them unchanged. This is their only copy
// in the tree; nothing may edit them (seeds_test.go pins their digests).
package seeds

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// files is the seed policies; embed lists them in name order.
//
//go:embed *.yaml
var files embed.FS

// FS returns the seed policy files, at the root of the file system.
func FS() fs.FS { return files }

// Names returns the seed policy files' names, in order (01-… first).
func Names() []string {
	entries, err := files.ReadDir(".")
	if err != nil {
		panic(fmt.Sprintf("seeds: reading the embedded files: %v", err))
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names
}

// WriteDir writes every seed policy file into dir, creating dir if needed,
// and returns the written files' paths in name order: tests and agents
// that read a profiles directory get the seeds there.
func WriteDir(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("writing the seed policies: %w", err)
	}
	var paths []string
	for _, name := range Names() {
		data, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading seed %s: %w", name, err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, fmt.Errorf("writing seed %s: %w", name, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// TB is what Dir needs of a test (a *testing.T or *testing.B), so that
// this package does not import testing.
type TB interface {
	Helper()
	TempDir() string
	Fatalf(format string, args ...any)
}

// Dir writes the seed policies into a new temporary directory of the test
// t and returns it; t fails if they cannot be written.
func Dir(t TB) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := WriteDir(dir); err != nil {
		t.Fatalf("%v", err)
	}
	return dir
}
