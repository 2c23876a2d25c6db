package boundedfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Read returns files up to the bound and refuses larger ones by name.
func TestRead(t *testing.T) {
	file := filepath.Join(t.TempDir(), "records.json")
	if err := os.WriteFile(file, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := Read(file, 5); err != nil || string(data) != "12345" {
		t.Fatalf("Read at the bound: %q, %v", data, err)
	}
	if _, err := Read(file, 4); err == nil || !strings.Contains(err.Error(), file+" exceeds 4 bytes") {
		t.Fatalf("Read past the bound: %v", err)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing"), 5); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Read of a missing file: %v", err)
	}
}
