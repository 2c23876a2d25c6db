package seeds

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// digests are the SHA-256 sums of the seed documents' policies: a seed
// that differs by one byte from the seed documents fails here.
var digests = map[string]string{
	"01-detect-reverse-shell-outbound.yaml":      "0d55b5a75fbd8ab2768c77e0fe55a757cee36a17e941fd6813606b82b69f91cd",
	"02-detect-bind-shell.yaml":                  "3b61d1bb2a4f67d711377e5aaf0efc40c2b9dca2b15f053f50b14cce17c70422",
	"03-detect-reverse-shell-all-protocols.yaml": "135d8a40aa25cce2b36626992f7f8ca51bdcd1f8181571667eed4e830cbee25a",
	"04-detect-encrypted-reverse-shell.yaml":     "5c246cfe196ac9cb581fa94e947bc546f4e229239c1af185b2cfc757c57d4d85",
	"05-enforce-no-reverse-shell.yaml":           "b9edda171c15e6a6c04b55d0f547551ae679d6a3d45aac1425010cd0f6a16540",
	"06-egress-all-protocols.yaml":               "17752113786dad57f24fc994197f20264fc76e0551e29e3d6bb0397e430ed474",
	"07-egress-suspicious-binaries.yaml":         "03441ab27be08246cfbe51dd28647250f6bab88a86070615fad93047148d90e5",
}

func TestSeedsUnchanged(t *testing.T) {
	names := Names()
	if len(names) != len(digests) || !slices.IsSorted(names) {
		t.Fatalf("seed files %q, want the %d of the seed documents in order", names, len(digests))
	}
	for _, name := range names {
		data, err := fs.ReadFile(FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != digests[name] {
			t.Errorf("%s: sha256 %s, want %s (the seeds stay byte for byte as given)", name, got, digests[name])
		}
	}
}

func TestDir(t *testing.T) {
	dir := Dir(t)
	for _, name := range Names() {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}

func TestWriteDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profiles")
	paths, err := WriteDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(digests) {
		t.Fatalf("wrote %d files, want %d", len(paths), len(digests))
	}
	for _, p := range paths {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want, err := fs.ReadFile(FS(), filepath.Base(p))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from the embedded seed (%v)", p, err)
		}
	}
}
